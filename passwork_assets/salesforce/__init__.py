"""Salesforce side of the sync: describe model, client, loading."""
