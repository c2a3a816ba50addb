"""The process: the CLI (`cli`), configuration loading (`config`, `config_expand`,
`config_summary`), the app factory (`app`, `wiring`), the HTTP server (`server`), Slack delivery
de-duplication (`deliveries`), the scheduler, logging, start-up checks and the `audit` CLI.
`demo/` sits above it: the sandbox world and terminal console of `gitops-bot demo`.
"""
