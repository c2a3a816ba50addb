"""Extension points, the way pytest and datasette have them (pluggy).

`hookspecs` (the typed hook specifications), `model` (what the hooks receive and return:
PlannedChange → Finding, Event, batch plans), `manager` (loads the built-ins and the third-party
plugins named in config from the `gitops_bot` entry-point group, validates their settings, and calls
the hooks one plugin at a time so a failing plugin is contained and named), `builtin/` (the
validators, notifiers and batch strategies that ship with the bot, written as plugins too).
"""
