"""The run of one flow, and of several in parent-first order: extract, transform, diff, load, account."""
