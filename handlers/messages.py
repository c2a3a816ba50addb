"""Every user-visible string in one place, so wording stays consistent and reviewable."""

from __future__ import annotations

PRODUCT = "gitops-bot"
HELP_TITLE = "gitops-bot: GitOps from Slack"
HELP_INTRO = (
    "Status, sync, diff, history, rollback and promotions for Argo CD and Flux apps. "
    "Git stays the source of truth: promotions and GitOps rollbacks are commits."
)
HELP_FOOTER = "`/gitops help` with a subcommand shows its flags and examples, e.g. `/gitops help sync`."
HELP_FILTERED = "Only the subcommands you may run are listed (`/gitops whoami` shows your roles)."
HELP_USAGE = "*Usage*"
HELP_FLAGS = "*Flags*"
HELP_EXAMPLES = "*Examples*"

WORKING = ":hourglass_flowing_sand: Working on `/gitops {command}`…"
BUSY = (
    ":traffic_light: The bot is busy with other requests right now. "
    "Nothing was started; try `/gitops {command}` again in a minute."
)
NOT_AVAILABLE = (
    "`{subcommand}` is not available here: it needs {needs}, which this bot is not configured with."
)
NOT_AVAILABLE_NEEDS: dict[str, str] = {
    "status": "the Argo CD or Flux backend",
    "sync": "the Argo CD or Flux backend",
    "diff": "the Argo CD or Flux backend",
    "history": "the Argo CD or Flux backend",
    "rollback": "the Argo CD or Flux backend",
    "suspend": "the Flux backend",
    "resume": "the Flux backend",
    "promote": "an Argo CD or Flux backend",
    "lock": "deploy locks",
    "unlock": "deploy locks",
    "drift": "drift alerts",
    "audit": "audit queries from Slack (use the audit database meanwhile)",
    "pipelines": "a Tekton cluster (`tekton:` in the config)",
    "pipeline": "a Tekton cluster (`tekton:` in the config)",
    "stats": "an Argo CD or Flux backend",
}

ERROR_USER = ":warning: {message}"
ERROR_DENIED = ":no_entry: Not allowed: {reason}"
ERROR_BACKEND = (
    ":electric_plug: {backend} is not answering: {message}. Nothing was changed; try again shortly."
)
ERROR_BACKEND_RETRY = " Slack asked us to wait {seconds:.0f}s."
ERROR_INTERNAL = (
    ":boom: Something went wrong on our side. Nothing was recorded as done. "
    "Reference `{correlation_id}` (give it to your platform team)."
)
ERROR_PLUGIN = (
    ":boom: The plugin `{plugin}` failed, so nothing was done. "
    "Reference `{correlation_id}` (give it to your platform team)."
)
REF = "ref `{correlation_id}`"

FOLLOW_ENDED = ":hourglass: Stopped following after {timeout}: {reason}. Check with `{check}`."
FOLLOW_STILL_RUNNING = (
    ":hourglass: Still running in {what} when gitops-bot stopped; it follows it again once it is back."
)
FOLLOW_RESUMED = "Followed again after a restart of gitops-bot."
CUTOFF_RESTART = "gitops-bot restarted before this finished"
CUTOFF_SHUTDOWN = "gitops-bot was shut down before this finished"
CUTOFF_UNKNOWN = (
    ":warning: {what}, so its outcome is unknown: the change may have gone through. Check with {check}."
)
CUTOFF_NOTHING = ":warning: {what}; nothing was changed. Run `/gitops {command}` again."
CUTOFF_NOTHING_CLICK = ":warning: {what}; nothing was changed. Click the button again."

BUTTON_EXPIRED = ":hourglass: This button is no longer active. Run the command again to get a fresh one."

WHOAMI_TITLE = "Who you are to gitops-bot"
WHOAMI_USER = "*You*\n<@{user_id}> (`{user_id}`)"
WHOAMI_ROLES = "*Roles*\n{roles}"
WHOAMI_ROLES_DEFAULT = "viewer (access control is not configured: everyone may read, nobody may change)"
WHOAMI_BACKENDS = "*Backends*\n{backends}"
WHOAMI_NO_BACKENDS = "none configured"
WHOAMI_VERSION = "gitops-bot {version}"

HEALTH_ICON: dict[str, str] = {
    "Healthy": ":large_green_circle:",
    "Progressing": ":large_blue_circle:",
    "Degraded": ":red_circle:",
    "Suspended": ":double_vertical_bar:",
    "Missing": ":large_yellow_circle:",
    "Unknown": ":white_circle:",
}
SYNC_ICON: dict[str, str] = {
    "Synced": ":white_check_mark:",
    "OutOfSync": ":large_orange_diamond:",
    "Unknown": ":grey_question:",
}
PHASE_ICON: dict[str, str] = {
    "Running": ":arrows_counterclockwise:",
    "Terminating": ":octagonal_sign:",
    "Succeeded": ":white_check_mark:",
    "Failed": ":x:",
    "Error": ":x:",
    "Requested": ":hourglass_flowing_sand:",
}

STATUS_OPEN_UI = "Open in Argo CD"
STATUS_ALL_GOOD = ":sparkles: Every app is Synced and Healthy."
STATUS_NONE = "No apps match."
STATUS_UNREACHABLE = ":electric_plug: Not answering, so not counted: {names}"
STATUS_LOCKED = ":lock: Locked: {reason}"

SYNC_TITLE = "Sync {app}"
SYNC_DRY_TITLE = "Dry-run sync {app}"
SYNC_REQUESTED = "Requested by <@{user}>"
SYNC_NOTHING = "No app matches `{selector}`; nothing was synced."
BATCH_TITLE = "Sync {count} apps matching {selector}"

DIFF_TITLE = "Diff {app}"
DIFF_NONE = ":white_check_mark: `{app}` is in sync with Git: nothing would change."
DIFF_FILE_NOTE = "The full diff ({lines} lines) is in the file {link}."
DIFF_FILE_FAILED = "The full diff is too long for a message and could not be uploaded as a file."

HISTORY_TITLE = "History of {app}"
HISTORY_EMPTY = "`{app}` has no recorded deployments yet."
HISTORY_ROLLBACK = "`{command}` goes back to #{id}"

ROLLBACK_TITLE = "Roll back {app}?"
ROLLBACK_BODY = "Roll back *{app}* from {current} to deployment *#{id}*: {revision}{when}."
ROLLBACK_AUTOSYNC = (
    ":warning: Automated sync is on for *{app}*. Argo CD refuses a rollback while it is on, because "
    "auto-sync would move the app straight back to the newest commit in Git."
)
ROLLBACK_AUTOSYNC_OFFER = (
    "The bot can turn auto-sync off, roll back, and keep reminding this channel until someone turns it "
    "back on."
)
ROLLBACK_CONFIRM = "Roll back"
ROLLBACK_DISABLE = "Disable auto-sync and roll back"
ROLLBACK_CANCEL = "Cancel"
ROLLBACK_CANCELLED = "Rollback of `{app}` cancelled by <@{user}>. Nothing changed."
ROLLBACK_STARTED = ":rewind: Rolling back `{app}`; follow it in the channel."
ROLLBACK_NOT_YOURS = "Only <@{user}>, who asked for this rollback, can confirm it."
ROLLBACK_RUN_TITLE = "Rollback {app} to #{id}"
ROLLBACK_CONFIRM_DIALOG = ("Roll back?", "{app} goes back to deployment #{id}.", "Roll back")
ROLLBACK_DISABLE_DIALOG = (
    "Disable auto-sync?",
    "Auto-sync stays off for {app} until someone turns it back on.",
    "Do it",
)
HOLD_REMINDER = (
    ":double_vertical_bar: Auto-sync is still *off* for `{app}` since {since} (turned off by <@{user}> "
    "for a rollback). Git changes are not being deployed to it."
)
HOLD_REENABLE = "Re-enable auto-sync"
HOLD_SUSPENDED_REMINDER = (
    ":double_vertical_bar: `{app}` is still *suspended* since {since} (suspended by <@{user}> after a "
    "rollback). Flux is not reconciling it."
)
HOLD_RESUME = "Resume"
ROLLBACK_SUSPENDED = (
    "Suspended afterwards (hold #{hold}) so automation cannot roll it forward; "
    "`/gitops resume {args}` ends it."
)
HOLD_RESUMED = ":arrow_forward: `{app}` is reconciling again (resumed by <@{user}>)."
SUSPENDED = (
    ":double_vertical_bar: Suspended `{app}`: Flux stops reconciling it until `/gitops resume {args}`."
)
RESUME_TITLE = "Resume {app}"
FLUX_ROLLBACK_REVERT = (
    "Revert commit {revision} in Git (the latest change to `{path}`), push, then reconcile *{app}*."
)
FLUX_ROLLBACK_RESTORE = "Restore `{path}` to commit {revision} in Git, push, then reconcile *{app}*."
# A Flux rollback is a new commit: after a revert the app runs the reverted commit's parent, so the
# wording names the commit undone ("Revert 840f65c"), never "roll back to" it.
FLUX_REVERT_LABEL = "Revert {sha}"
FLUX_RESTORE_LABEL = "Restore to {sha}"
FLUX_REVERT_RUN_TITLE = "Revert {sha} in {app}"
FLUX_RESTORE_RUN_TITLE = "Restore {app} to {sha}"
FLUX_REVERT_DIALOG = (
    "Revert {sha}?",
    "A new commit undoes {sha} in Git; {app} then runs what it ran before {sha}.",
    "Revert",
)
FLUX_RESTORE_DIALOG = (
    "Restore to {sha}?",
    "A new commit puts `{path}` back as it was at {sha}; {app} then runs that.",
    "Restore",
)
HOLD_RELEASED = ":arrow_forward: Auto-sync is back *on* for `{app}` (by <@{user}>)."
HOLD_ALREADY = "Auto-sync for `{app}` was already turned back on."

LOCKED_ANNOUNCE = ":lock: <@{user}> locked `{scope}`{until}: {reason}"
LOCK_UNTIL = " until {when} UTC"
UNLOCKED_ANNOUNCE = ":unlock: <@{user}> unlocked `{scope}`."
LOCK_EXPIRED = ":unlock: The lock on `{scope}` (set by <@{user}>: {reason}) has expired."
LOCK_FORCED = "Lock on `{scope}` overridden with --force by an admin."
LOCKS_TITLE = "Locks"
RATE_LIMITED = (
    ":turtle: Slow down: you ran {limit} changing commands in {per}. "
    "Try again in {seconds:.0f}s; nothing was started."
)

AUDIT_TITLE = ":mag: Audit{filters}"
AUDIT_EMPTY = "No audit rows match."
AUDIT_MORE = "More"
AUDIT_PAGE = "{count} rows, newest first"

WHOAMI_NO_ROLES = "none: you may not use gitops-bot here"

PROMOTE_TITLE = "Promote {app}: {source} → {target}"
PROMOTE_NOTHING = (
    ":white_check_mark: Nothing to promote: `{app}` in {target} already runs what {source} runs."
)
PROMOTE_APPROVALS = "*Approvals*\n{have} of {need}"
PROMOTE_APPROVED_BY = "Approved by {users}"
PROMOTE_REJECTED = ":no_entry_sign: Rejected by <@{user}>: {reason}"
PROMOTE_EXPIRED = (
    ":hourglass: Expired: nobody approved within {ttl}. "
    "Run `/gitops promote {app} --to {target} --from {source}` again if it is still wanted."
)
PROMOTE_SUPERSEDED = (
    ":warning: `{target}` moved since this was requested; here is the diff as it is now. "
    "Earlier approvals no longer count: approve again."
)
PROMOTE_COMMITTED = ":white_check_mark: Committed `{sha}` to `{repo}`; now deploying."
PROMOTE_LOCKED = (
    ":lock: `{scope}` is locked by <@{user}>: {reason}. Approving and committing wait until it is "
    "unlocked; only an admin's `--force` on the request passes a lock."
)
PROMOTE_FORCED = ":unlock: Requested with `--force` by <@{user}>: deploy locks on `{target}` do not stop it."
PROMOTE_APPROVE_LOCKED = (
    "Your approval was not recorded: `{scope}` is locked by <@{user}>: {reason}. "
    "Approve again once it is unlocked."
)
PROMOTE_NOT_COMMITTED = ":x: Not committed: {why} Nothing was pushed."
PROMOTE_LOCKED_AT_COMMIT = "`{scope}` was locked by <@{user}> ({reason}) before the commit."
PROMOTE_VALIDATORS_BLOCKED = "a check refuses it now:\n{findings}\n"
PROMOTE_BLOCKED = ":no_entry: Not requested: a check above refuses it. {retry}"
PROMOTE_PLUGIN_FAILED = "the plugin `{plugin}` failed while checking this change; approving runs it again"
PROMOTE_FINDINGS_TITLE = "*Checks*"
PROMOTE_RETRY = "Ask again once that is resolved: `/gitops promote {app} --to {target} --from {source}`."
PROMOTE_NOT_DEPLOYED = (
    ":lock: Committed `{sha}` to `{repo}` but not deployed: `{scope}` was locked by <@{user}> ({reason}) "
    "meanwhile. Deploy it once unlocked with `{command}`."
)
PROMOTE_NOT_DEPLOYED_AUTO = " Auto-sync is on, so Argo CD or Flux may deploy it anyway."
PROMOTE_REDUNDANT = ":white_check_mark: Nothing left to promote: already done by {by}."
PROMOTE_REDUNDANT_GIT = (
    ":white_check_mark: Nothing left to promote: `{target}` already runs what `{source}` runs."
)
PROMOTE_CARD_LINK = "the approval card"
PROMOTE_ELSEWHERE = (
    ":inbox_tray: <@{user}> asks to promote *{app}* to `{target}`: {summary}. Approval is requested in "
    "<#{channel}>{link}."
)
PROMOTE_APPROVE = "Approve"
PROMOTE_REJECT = "Reject"
PROMOTE_REASON_LABEL = "Reason (for Reject)"
PROMOTE_ONE_APPROVAL = "Your approval is recorded ({have} of {need})."

DRIFT_KIND = {
    "git_ahead": "Undeployed Git change",
    "live_changed": "Live state changed outside Git",
    "failing": "Failing reconcile",
}
DRIFT_RESOLVED = ":white_check_mark: Resolved after {duration}."
DRIFT_REOPENED = ":repeat: Back again (flapped {count}×)."
DRIFT_DIGEST_TITLE = ":rotating_light: {count} new drift incidents"
DRIFT_DIGEST_PROGRESS = "{resolved} of {count} resolved"
DRIFT_DIGEST_ALL_RESOLVED = ":white_check_mark: {count} drift incidents: all resolved"
DRIFT_DIGEST_ITEM_RESOLVED = "resolved after {duration}"
DRIFT_DIGEST_FOOTER = "Each resolution is posted in this thread. `/gitops drift` lists what is open."
DRIFT_UNREACHABLE = (
    ":electric_plug: {backend} is not answering: drift there is not being checked "
    "(nothing is marked resolved)."
)
DRIFT_REACHABLE = ":electric_plug: {backend} answers again; drift checks resumed."
DRIFT_NONE = ":sparkles: No open drift incidents."
DRIFT_ACKED = "Acknowledged by <@{user}>"
DRIFT_SNOOZED = "Snoozed until {until} UTC by <@{user}>"
DRIFT_SYNC_NOW = "Sync now"
DRIFT_SHOW_DIFF = "Show diff"
DRIFT_SNOOZE_1H = "Snooze 1h"
DRIFT_SNOOZE_24H = "Snooze 24h"
DRIFT_ACK = "Acknowledge"

# -- batch strategies (issue 15)
BATCH_STRATEGY_UNKNOWN = "unknown strategy `{name}`: {known}."
BATCH_STRATEGY_HINT = "Did you mean `{name}`?"
BATCH_SKIP_FAILED = "not started: {app} failed (stop_on_failure)"
BATCH_SKIP_GATE = "not started: {app} ended {outcome}, not Succeeded and Healthy ({strategy} gate)"
BATCH_WAITING_HEALTHY = "waiting for Healthy (now {health})"
BATCH_STRATEGY_FIELD = "*Strategy*\n{strategy}"
BATCH_STOP_ON_FAILURE = ", stop on failure"
BATCH_WAVE = "wave {name}"
BATCH_PLAN_MISMATCH = (
    "strategy `{name}` planned other apps than the ones selected (a plugin bug); nothing was started."
)

# -- Tekton pipelines (issue 16)
PIPELINES_TITLE = "Pipeline runs"
PIPELINES_NONE = "No Tekton pipelines are configured for {what}."
PIPELINES_NONE_HINT = "Add them under `apps[].pipelines` in the config (docs/configuration.md)."
PIPELINE_STARTED = ":rocket: Started `{pipeline}` for `{app}`; follow it in the channel."
PIPELINE_DISMISSED = "Run of `{pipeline}` not started (cancelled by <@{user}>). Nothing was created."
PIPELINE_NOT_YOURS = "Only <@{user}>, who asked for this run, can start it."
PIPELINE_GONE = "The pipeline `{pipeline}` of `{app}` is no longer configured; nothing was started."
PIPELINE_CANCELLING = (
    ":no_entry_sign: Cancelling `{run}`: its running tasks stop, its finally tasks still run. "
    "The run's message shows when it has ended."
)
PIPELINE_CANCEL_REQUESTED = "Cancel requested by <@{user}>; finally tasks still run."
PIPELINE_CANCELLED_BY = "Cancelled by <@{user}>."
PIPELINE_ALREADY_CANCELLED = "Run `{run}` was already cancelled by <@{user}>; nothing more happened."
PIPELINE_FOLLOW_ENDED = (
    ":hourglass: Stopped following after {timeout}: {reason}. The run goes on in Tekton; "
    "check it with `{check}`."
)
PIPELINE_FOLLOW_CUT = "Run `{run}`: gitops-bot stopped following it. Check it with `{check}`."

# Promotions through a pull request (GitHub) or merge request (GitLab): handlers/promote/pull_request.py
PROMOTE_PR_TITLE = "Promote {app} to {target}: {summary}"
PROMOTE_PR_BODY = (
    "Promotion of **{app}** from `{source}` to `{target}`, requested in Slack by {requester}: {summary}\n\n"
    "Approvals happen on the Slack card{link}. gitops-bot merges this {noun} once they are complete and "
    "{host}'s rules are met, then deploys. Please do not push to this branch: a push asks the approvers "
    "again.\n\n```diff\n{diff}\n```\n\nAudit-Id: `{audit_id}`"
)
PROMOTE_PR_LINE = "*{host} {noun}*: <{url}|{ref}> from `{branch}`"
PROMOTE_PR_CHECKS = "Checks: {checks}"
PROMOTE_PR_READINESS = {
    "wait": "{host} is still working out whether it can merge",
    "ready": "{host}: ready to merge",
    "blocked": "Still missing on {host}:",
    "conflict": "{host}: the branch conflicts with its base",
    "closed": "{host}: closed",
    "merged": "{host}: merged",
}
PROMOTE_PR_NOT_OPENED = ":x: The {noun} could not be opened: {why}"
PROMOTE_PR_WAITING = (
    ":hourglass_flowing_sand: Approved in Slack; waiting for {host} before merging <{url}|{ref}>:\n{missing}"
)
PROMOTE_PR_WAIT_COMPUTING = "• {host} to finish computing whether it can merge"
PROMOTE_PR_HOST_APPROVED = "Approved on {host} as the second identity, for the Slack approvers."
PROMOTE_PR_HOST_APPROVAL_FAILED = "The approving review on {host} was refused: {why}"
PROMOTE_PR_MERGED = ":white_check_mark: Merged <{url}|{ref}> into `{branch}` as `{sha}`; now deploying."
PROMOTE_PR_CLOSED = (
    ":no_entry_sign: <{url}|{ref}> was closed on {host} outside Slack; nothing was merged. "
    "Ask again with `/gitops promote {app} --to {target} --from {source}`."
)
PROMOTE_PR_CONFLICT = (
    ":x: <{url}|{ref}> conflicts with `{branch}` now; it was closed and nothing was merged. "
    "Ask again with `/gitops promote {app} --to {target} --from {source}`."
)
PROMOTE_PR_NOT_MERGEABLE = ":x: {host} refused to merge <{url}|{ref}>: {why}"
PROMOTE_PR_HEAD_MOVED = (
    ":warning: Someone pushed `{sha}` to <{url}|{ref}> after the card was shown, so it was not merged. "
    "The branch now holds this promotion's change again (below); approve again to merge it."
)
PROMOTE_PR_WAIT_ENDED = (
    ":hourglass: Stopped waiting for {host} after {timeout}; <{url}|{ref}> stays open and nothing was "
    "merged. Ask again with `/gitops promote {app} --to {target} --from {source}`."
)
# mode: auto — the push was refused as protected (said once per repository and branch)
PROTECTED_SWITCHED = (
    ":lock: `{repo}`'s `{branch}` is protected ({why}): switched to a {noun}. Later changes to it open "
    "one straight away."
)
PROMOTE_PR_UPDATED = (
    "Brought <{url}|{ref}> up to date with `{branch}`; the promotion's change is unchanged, so the "
    "approvals stand."
)
# Flux rollbacks into a protected branch: through a pull / merge request
ROLLBACK_PR_TITLE = "Roll back {app}: {what}"
ROLLBACK_PR_BODY = (
    "Rollback of **{app}** (`{where}`): {what}, confirmed in Slack by {who}{link}.\n\n"
    "gitops-bot merges this {noun} once {host}'s rules are met, then reconciles. Please do not push to "
    "this branch.\n\n<sub>gitops-bot · {pending}</sub>"
)
ROLLBACK_PR_OPENING = ":arrows_counterclockwise: Pushed the rollback to `{branch}`; opening its {noun}…"
ROLLBACK_PR_HEAD_MOVED = (
    ":warning: Someone pushed `{sha}` to <{url}|{ref}> after the rollback was confirmed, so it was not "
    "merged. Run `/gitops rollback {args}` again if it is still needed."
)
ROLLBACK_PR_OPENED = ":arrows_counterclockwise: Rollback of *{app}* through <{url}|{ref}> from `{branch}`."
ROLLBACK_PR_WAITING = (
    ":hourglass_flowing_sand: Rollback of *{app}* confirmed; waiting for {host} before merging "
    "<{url}|{ref}>:\n{missing}"
)
ROLLBACK_PR_MERGED = ":white_check_mark: Merged <{url}|{ref}> into `{branch}` as `{sha}`; now reconciling."
ROLLBACK_PR_CLOSED = (
    ":no_entry_sign: <{url}|{ref}> was {state} on {host} outside Slack; the rollback of *{app}* did not "
    "happen. Run `/gitops rollback {args}` again if it is still needed."
)
ROLLBACK_PR_NOT_MERGED = ":x: The rollback of *{app}* was not merged: {why}"
# Open promotion cards kept in step with their pull / merge request (handlers/promote/refresh.py)
PROMOTE_PR_MERGED_OUTSIDE = (
    ":warning: <{url}|{ref}> was merged on {host} as `{sha}` without the Slack approvals, so the bot does "
    "not deploy it. {tool} will deploy it on its own schedule; to deploy it now: `{command}`."
)
PROMOTE_PR_GONE = (
    ":no_entry_sign: <{url}|{ref}> is gone from {host} (deleted, or its branch removed) outside Slack; "
    "nothing was merged. Ask again with `/gitops promote {app} --to {target} --from {source}`."
)
PROMOTE_PR_HEAD_MOVED_PENDING = (
    ":warning: Someone pushed `{sha}` to <{url}|{ref}> while it waited for approval: the approvals given "
    "so far no longer count. The branch holds this promotion's change again (below); approve it again."
)
