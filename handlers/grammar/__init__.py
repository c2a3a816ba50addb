"""What users type: `parser` (text → CommandRequest), `rules` (each argument's field and validator),
`spec` (the subcommand table that `help`, the grammar and the docs tests share).
"""
