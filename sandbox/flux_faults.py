"""Injected trouble for the fake Flux controllers: kind aliases and realistic failure messages."""

from __future__ import annotations

from sandbox.flux_kinds import PLURALS
from sandbox.k8s_store import Entry

_ALIASES = {
    **{kind.lower(): kind for kind in PLURALS},
    **{plural: kind for kind, plural in PLURALS.items()},
    "ks": "Kustomization",
    "hr": "HelmRelease",
    "gitrepo": "GitRepository",
    "ocirepo": "OCIRepository",
    "helmrepo": "HelmRepository",
    "hc": "HelmChart",
}


def kind_of(name: str) -> str:
    """`Kustomization` for `ks`, `kustomizations`, `Kustomization`…; KeyError for anything else."""
    kind = _ALIASES.get(name.lower())
    if kind is None:
        raise KeyError(f"not a Flux kind: {name!r}")
    return kind


def default_message(kind: str, reason: str, entry: Entry) -> str:
    """What the real controller would say for `reason` about this object."""
    meta, spec = entry.obj["metadata"], entry.obj.get("spec") or {}
    target = spec.get("targetNamespace") or meta["namespace"]
    messages = {
        "BuildFailed": (
            "kustomize build failed: accumulating resources: accumulation err='accumulating resources "
            f"from './{meta['name']}': open /tmp/kustomization-2208150219/{meta['name']}: "
            "no such file or directory'"
        ),
        "HealthCheckFailed": (
            "health check failed after 5m0.04s: timeout waiting for: "
            f"[Deployment/{target}/{meta['name']} status: 'InProgress']"
        ),
        "ReconciliationFailed": (
            f'Deployment/{target}/{meta["name"]} dry-run failed: Deployment.apps "{meta["name"]}" is '
            "invalid: spec.template.spec.containers[0].image: Required value"
        ),
        "GitOperationFailed": (
            f"failed to checkout and determine revision: unable to clone '{spec.get('url', '')}': "
            "repository not found"
        ),
        "AuthenticationFailed": (
            "failed to get secret 'flux-system/git-credentials': secrets \"git-credentials\" not found"
        ),
        "InvalidCELExpression": (
            "failed to parse expression 'status.conditions.filter(': Syntax error: missing ')'"
        ),
        "AccessDenied": "cross-namespace references are not allowed",
        "TestFailed": f"pod {meta['name']}-test-6bc9f failed",
        "DependencyNotReady": f"dependency '{meta['namespace']}/infrastructure' is not ready",
    }
    if kind == "HelmRelease" and reason in ("UpgradeFailed", "InstallFailed", "RollbackSucceeded"):
        return "context deadline exceeded"
    return messages.get(reason, f"{reason} (injected by the sandbox)")
