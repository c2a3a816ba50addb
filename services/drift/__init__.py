"""Drift alerts: what differs from Git, as incidents that keep one Slack message each.

`scan` (one list per backend kind → findings), `rules` (what counts as a problem per backend),
`incident` (the incident record), `store` (incidents, first sightings, reachability in SQLite).
Never depends on `services.promotion`.
"""
