"""The deployment feed (`feed:`): one message per deploy, and `/gitops stats` with its digest."""
