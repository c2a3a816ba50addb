"""Every user-visible string in one place, so wording stays consistent and reviewable."""

from __future__ import annotations

PRODUCT = "gitops-bot"
HELP_TITLE = "gitops-bot: GitOps from Slack"
HELP_INTRO = (
    "Status, sync, diff, history, rollback and promotions for Argo CD and Flux apps. "
    "Git stays the source of truth: promotions and GitOps rollbacks are commits."
)
HELP_FOOTER = "Run `/gitops help SUBCOMMAND` for its flags and examples."
HELP_USAGE = "*Usage*"
HELP_FLAGS = "*Flags*"
HELP_EXAMPLES = "*Examples*"

WORKING = ":hourglass_flowing_sand: Working on `/gitops {command}`…"
BUSY = (
    ":traffic_light: The bot is busy with other requests right now. "
    "Nothing was started; try `/gitops {command}` again in a minute."
)
NOT_AVAILABLE = (
    "`/gitops {subcommand}` is not available yet: it needs {needs}, which this version does not include."
)
NOT_AVAILABLE_NEEDS: dict[str, str] = {
    "status": "the Argo CD or Flux backend",
    "sync": "the Argo CD or Flux backend",
    "diff": "the Argo CD or Flux backend",
    "history": "the Argo CD or Flux backend",
    "rollback": "the Argo CD or Flux backend",
    "suspend": "the Flux backend",
    "resume": "the Flux backend",
    "promote": "promotions",
    "lock": "deploy locks",
    "unlock": "deploy locks",
    "drift": "drift alerts",
    "audit": "audit queries from Slack (use the audit database meanwhile)",
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
REF = "ref `{correlation_id}`"

BUTTON_EXPIRED = ":hourglass: This button is no longer active. Run the command again to get a fresh one."

WHOAMI_TITLE = "Who you are to gitops-bot"
WHOAMI_USER = "*You*\n<@{user_id}> (`{user_id}`)"
WHOAMI_ROLES = "*Roles*\n{roles}"
WHOAMI_ROLES_DEFAULT = "viewer (access control is not configured: everyone may read, nobody may change)"
WHOAMI_BACKENDS = "*Backends*\n{backends}"
WHOAMI_NO_BACKENDS = "none configured"
WHOAMI_VERSION = "gitops-bot {version}"
