"""Who may do what, and what stops them.

`policy` (roles and grants, one `check`), `rules` (roles compiled into rules), `groups` (Slack user
groups, cached), `locks` (deploy freezes), `ratelimit` (changing commands per user), `replay`
(signatures and delivery ids seen, so each Slack request runs once).
"""
