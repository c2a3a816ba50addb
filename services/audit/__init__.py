"""The audit trail: append-only, hash-chained, durable before it returns.

`trail` (AuditStore: append, search, verify, retention), `chain` (the row, its hash chain, verify,
retention), `query` (`/gitops audit` searches and exports).
"""
