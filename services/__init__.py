"""Everything the bot does, independent of Slack. Never imports slack_bolt / slack_sdk.

The shared kernel sits at the top; each capability is a package that imports the kernel and,
where named below, another capability — never a sibling otherwise (import-linter checks it).

Kernel
- `backend`      the GitOpsBackend protocol Argo CD and Flux implement, and the frozen records
                 (AppRef, AppStatus, HistoryEntry, RollbackPlan…) everything else speaks
- `apps`         what a user typed → AppRef; the one audit target of an app
- `operations`   status fan-out, sync and watch, batch sync, rollback with the auto-sync hold
- `holds`, `pending`, `inflight`   things the bot must remember across restarts: holds to undo,
                 what each button does, requests still running
- `jobs`         the bounded background pool (short work only)
- `watcher`      follows every running operation from one thread, so no worker waits on a deploy
- `coalesce`     identical backend reads share one request; status lists are reused briefly
- `errors`, `validation`, `redaction`, `correlation`, `metrics`, `revisions`

Capabilities
- `store/`       the SQLite database and its versioned schema
- `settings/`    the configuration model and its checks
- `audit/`       the hash-chained audit trail, its queries and export
- `access/`      roles and grants, user groups, deploy locks, rate limits, replay guard
- `promotion/`   promotions through Git (uses `git/`)
- `drift/`       drift scans and incidents
- `diffing/`     diffs for chat
- `leader/`      leader election on a Kubernetes Lease
- `extensions/`  the plugin mechanism (pluggy hooks, the plugin manager) and the built-in
                 validators, notifiers (webhook outbox) and batch strategies; it sits above the
                 other capabilities' records (audit rows become events) and below the handlers
- `argocd/`, `flux/`, `git/`, `registry/`   one package per external system (`flux/` uses `git/`
                 for rollbacks; `registry/` is the OCI Distribution API for `image_exists`)
"""
