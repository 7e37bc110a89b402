"""Evaluations: a retriever over a ground-truth dataset, scored exactly as trec_eval scores it."""
