"""State between runs in PostgreSQL: cursors, row hashes, rejects, runs and Bulk job ids."""
