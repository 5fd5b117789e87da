"""Benchmarks: `make bench` (python -m benchmarks) writes docs/benchmarks.md and bench-results/*.json."""
