"""OCI Distribution API: whether an image's manifest exists in its registry (the `image_exists`
validator). `reference` parses image references the way docker does; `client` asks the registry."""

from __future__ import annotations

from services.registry.client import (
    RegistryAccess,
    RegistryClient,
    RegistryError,
    RegistryUnauthorized,
    RegistryUnavailable,
)
from services.registry.reference import DOCKER_HUB, ImageRef, parse_image

__all__ = [
    "DOCKER_HUB",
    "ImageRef",
    "RegistryAccess",
    "RegistryClient",
    "RegistryError",
    "RegistryUnauthorized",
    "RegistryUnavailable",
    "parse_image",
]
