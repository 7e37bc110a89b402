"""The performance suite of issue 5: `python -m benchmarks all` or `python -m benchmarks NAME`."""
