"""The `required_checks` validator: the commit being deployed passed the named CI checks.

The results come from the plugins that know the Git host or pipeline (`gitops_bot_commit_checks`),
handed over in `change.checks`. Not overridden by `--force`: a red build is not a judgement call.
"""

from __future__ import annotations

from services.extensions.builtin.verdicts import plain
from services.extensions.model import Finding, PlannedChange
from services.settings.extensions import RequiredChecks


def required_checks_findings(spec: RequiredChecks, change: PlannedChange) -> list[Finding]:
    if not spec.checks:
        return []
    required = ", ".join(plain(c) for c in spec.checks)
    if change.checks is None:
        message = f"no integration reports CI checks for this commit; required: {required}"
        return [Finding(spec.kind, "block", message)]
    missing = []
    for name in spec.checks:
        state = change.checks.get(name)
        if state != "success":
            missing.append(f"{plain(name)} ({plain(state) if state else 'missing'})")
    if not missing:
        return []
    message = "required CI checks have not passed for this commit: " + ", ".join(missing)
    return [Finding(spec.kind, "block", message + "; wait for them, or fix the build and promote again")]
