"""`status`, `sync`, `diff`, `history`, `suspend`, `resume`: `executor` and their views (`status`,
`sync` with the batch card, `diff` with history).
"""
