"""Benchmarks: volumes too big for the test suite. ``python -m bench [name ...]`` runs them and prints a table."""
