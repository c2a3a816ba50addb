"""`gitops-bot demo`: the real bot in a sandbox world, driven from a terminal console.

`session` (run_demo: the console loop or a script), `world` (Git repository, fake Argo CD, Kubernetes
with Flux, Slack, the bot), `bridge` (feeds the deploy repository into the fake Argo CD), `config`,
`console` (what a typed line does), `feed` (new Slack messages as text), `render` (Block Kit as
terminal text), `script` (replays with `expect:`).
"""
