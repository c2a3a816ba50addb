"""Drift alerts in Slack: `job` (the scheduled scan and its messages), `executor` (`/gitops drift` and
the alert's buttons), `views`.
"""
