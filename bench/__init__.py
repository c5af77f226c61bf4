"""Benchmarks: `make bench` (or `python -m bench.ingest`). Not part of the test suite."""
