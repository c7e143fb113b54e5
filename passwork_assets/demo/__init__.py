"""Fixtures for the demo and the tests: an embedded PostgreSQL server and sample data."""
