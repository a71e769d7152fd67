"""Metrics, evaluation and the benchmark runner."""
