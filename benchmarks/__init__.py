"""Benchmark and reference scripts: `python -m benchmarks.NAME` from the project root. Not part of the installed
library; they call it as a user would."""
