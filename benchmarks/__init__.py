"""Benchmarks: `make bench` (python -m benchmarks) writes docs/benchmarks.md and docs/benchmarks.json."""
