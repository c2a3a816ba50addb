"""The bot's one database on either engine: `db` (the `Database` / `Tx` facade every store uses),
`sqlite` and `postgres` (the engines), `opening` (which one a URL names), `schema` / `schema_pg` (their
versioned migration steps).
"""
