"""The bot's one database: `db` (the SQLite connection, WAL, transactions, migrations runner) and
`schema` (versioned migration steps).
"""
