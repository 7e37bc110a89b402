"""eval-pipelines: offline evaluation of search retrievers as a Dagster project."""
