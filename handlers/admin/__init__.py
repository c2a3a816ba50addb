"""`lock` and `unlock`: `executor` and `views`."""
