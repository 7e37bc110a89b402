"""Readable views of finished records (verdict tables) shared by the CLI and the Dagster layer."""
