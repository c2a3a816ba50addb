"""Promotions: take the version one environment runs to the next, through a Git commit.

`service` (plan, still-current check, commit), `model` (plan and request records), `store` (requests,
approvals, outcomes), `yaml_edit` / `yaml_text` (byte-preserving version edits), `snapshot` (reading
the cached clone at a commit). Depends on `services.git` and the kernel; never on `services.drift`.
"""
