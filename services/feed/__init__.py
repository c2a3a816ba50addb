"""The deployment feed: every completed deploy of every followed app, detected once.

`model` holds the lean per-app snapshot the sources build from Argo CD stream events, Flux watch
events or a list; `detect` turns a snapshot and the app's stored cursor into at most one deploy;
`store` keeps cursors, the deploy history (what `stats` reads) and the bot's own deploys;
`argocd_source` / `flux_source` follow one backend each, resuming after a cut.
"""
