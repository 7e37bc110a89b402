"""Ranking metrics as plain functions over arrays: one small module per metric family."""
