"""Statistical tests used to compare retrievers (scipy underneath)."""
