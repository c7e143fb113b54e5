"""The user's mapping files: models, loading with file and line positions, field ownership, validation, drafts."""
