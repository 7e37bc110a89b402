"""Benchmarks: replay logged sessions through a baseline and candidates, and compare them."""
