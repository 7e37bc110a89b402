"""The name of each request kind's folder and of each partition table: said once, for the assets
that write the tables and the warehouse views that read them."""

BENCHMARKS = "benchmarks"
EVALUATIONS = "evaluations"

# A benchmark's partition tables, in the order its assets write them.
SESSIONS = "sessions"
SESSION_INTERACTIONS = "session_interactions"
# What every user of the sampled queries did with each document, corrected for position.
SESSION_EVIDENCE = "session_evidence"
# The sessions table's fact holding the click model the sample was scored with.
CLICK_MODEL_FACT = "click_model"
REPLAYS = "replays"
SESSION_SCORES = "session_scores"

# An evaluation's partition tables, in the order its assets write them.
QUERIES = "queries"
RUNS = "runs"
QUERY_METRICS = "query_metrics"
