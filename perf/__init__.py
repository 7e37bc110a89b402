"""The performance suite of issue 5: `python -m perf all` or `python -m perf NAME`."""
