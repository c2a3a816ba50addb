"""The configuration model: typed, frozen, validated once (pydantic).

`model` (Settings and its sections, Secrets), `types` (durations, names, URLs…), `check` (the
cross-reference checks `check-config` runs), `errors` (every problem, with its key path).
"""
