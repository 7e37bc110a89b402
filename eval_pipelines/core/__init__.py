"""Plain-Python core: no Dagster import anywhere below this package (a test enforces it)."""
