"""`rollback`: `executor` (confirm card, the buttons, the auto-sync hold) and `views`."""
