"""Benchmarks, run by `make bench`: performance targets as ratios against a baseline measured in the same run."""
