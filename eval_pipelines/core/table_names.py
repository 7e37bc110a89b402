"""The name of each request kind's folder and of each partition table: said once, for the assets
that write the tables and the warehouse views that read them."""

BENCHMARKS = "benchmarks"
EVALUATIONS = "evaluations"

# A benchmark's partition tables, in the order its assets write them.
SESSIONS = "sessions"
SESSION_INTERACTIONS = "session_interactions"
REPLAYS = "replays"
SESSION_SCORES = "session_scores"

# An evaluation's partition tables, in the order its assets write them.
QUERIES = "queries"
RUNS = "runs"
QUERY_METRICS = "query_metrics"
