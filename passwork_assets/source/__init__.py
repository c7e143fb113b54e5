"""Source databases: read-only query building, connections (TLS, SSH bastion), schema lookups, COPY streaming."""
