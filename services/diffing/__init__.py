"""Diffs for chat: `render` (per-resource unified diffs and a one-line summary), `summary` (the
semantic summary), `unified` (splitting `git diff` output), `emit` (noise stripping and a small YAML
emitter for Kubernetes objects).
"""
