"""Passwork: keeps Salesforce in step with PostgreSQL, as a Dagster code location."""
