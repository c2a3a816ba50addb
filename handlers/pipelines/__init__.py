"""Tekton pipelines from Slack: `views` (the run card, the list, the start confirmation)."""
