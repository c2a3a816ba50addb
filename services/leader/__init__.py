"""Which replica leads (runs the drift scan): `election` (the Leadership protocol, AlwaysLeader,
the factory), `lease` (election over a Kubernetes Lease, with client-go's rules).
"""
