"""The `image_exists` validator: every image a promotion deploys is in its registry.

Asked of the registry itself (OCI Distribution API, services/registry). A missing image, or a
registry that cannot be asked, is a finding of the configured severity; `--force` does not pass
it: an image that is not there cannot start, whoever insists.
"""

from __future__ import annotations

from collections.abc import Callable

from services.extensions.builtin.verdicts import plain
from services.extensions.model import Finding, PlannedChange
from services.registry import RegistryAccess, RegistryClient, RegistryError, parse_image
from services.settings.extensions import ImageExists


def registry_client(spec: ImageExists, secret: Callable[[str | None], str | None]) -> RegistryClient:
    """The client for one `image_exists` validator, its credentials read through `secret`."""
    access = [
        RegistryAccess(
            host=r.host,
            username=secret(r.username_env),
            password=secret(r.password_env),
            insecure=r.insecure,
            mirror=r.mirror,
        )
        for r in spec.registries
    ]
    return RegistryClient(access)


def image_findings(spec: ImageExists, client: RegistryClient, change: PlannedChange) -> list[Finding]:
    findings = []
    for item in change.changes:
        if item.kind != "image" or not item.image:
            continue
        shown = plain(item.image)
        try:
            image = parse_image(item.image)
        except ValueError as exc:
            message = f"image {shown} is not a valid image reference ({exc}): check the promoted value"
            findings.append(Finding(spec.kind, spec.severity, message))
            continue
        try:
            found = client.manifest_exists(image)
        except RegistryError as exc:  # its text names the host and a reason, never a credential
            message = (
                f"could not check that image {shown} exists: registry {plain(exc.host)} {plain(exc.reason)}; "
                "check the registry, or its credentials in the `image_exists` validator's `registries`"
            )
            findings.append(Finding(spec.kind, spec.severity, message))
            continue
        if not found:
            message = f"image {shown} does not exist in its registry: push it first, or check the tag"
            findings.append(Finding(spec.kind, spec.severity, message))
    return findings
