"""The sources behind a Kustomization or HelmRelease: reading them, and reconciling them first
(`flux reconcile ... --with-source`, docs/flux-api.md §2).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from services.errors import BackendUnavailable, UserError
from services.flux import convert as cv
from services.flux import reconcile as rc
from services.flux.client import FluxClient, Json
from services.flux.errors import FluxForbidden, FluxNotFound
from services.flux.kinds import (
    HELM_CHART,
    HELM_RELEASE,
    HELM_REPOSITORY,
    OCI_REPOSITORY,
    FluxKind,
    kind_named,
)

Step = tuple[FluxKind, str, str, bool]  # kind, namespace, name, optional (may not exist)


def source_of(client: FluxClient, obj: Mapping[str, object], kind: FluxKind) -> Json | None:
    """The object `sourceRef` / `chartRef` / the chart template points at; None when it is missing
    or unreadable (a status without it just shows sync Unknown)."""
    found = cv.source_ref(obj, kind)
    if found is None:
        return None
    try:
        return client.get(*found)
    except (FluxNotFound, FluxForbidden):
        return None


def _static(kind: FluxKind, obj: Mapping[str, object]) -> bool:
    # A HelmRepository of type oci has no artifact and is never reconciled (§1).
    return kind is HELM_REPOSITORY and cv.spec(obj).get("type") == "oci"


class SourceReconciler:
    def __init__(
        self,
        client: FluxClient,
        *,
        poll_interval: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._clock = clock
        self._sleep = sleep

    def _chain(self, obj: Mapping[str, object], kind: FluxKind) -> list[Step]:
        """What to reconcile before the object, in order (`reconcile_with_source.go`)."""
        found = cv.source_ref(obj, kind)
        if found is None:
            return []
        source_kind, namespace, name = found
        if kind is not HELM_RELEASE or source_kind is OCI_REPOSITORY:
            return [(source_kind, namespace, name, False)]
        if source_kind is HELM_CHART:  # chartRef to a HelmChart: its own source comes first
            chart = self.client.get(HELM_CHART, namespace, name)
            inner = _chart_source(chart, namespace)
            return [*([inner] if inner else []), (HELM_CHART, namespace, name, False)]
        # A chart template: its source, then the HelmChart helm-controller generated from it.
        hr_meta = cv.meta(obj)
        chart_path = cv.text(cv.status_of(obj).get("helmChart"))
        chart_ns, _, chart_name = chart_path.partition("/")
        if not chart_name:
            chart_ns = namespace
            chart_name = f"{cv.text(hr_meta.get('namespace'))}-{cv.text(hr_meta.get('name'))}"
        return [(source_kind, namespace, name, False), (HELM_CHART, chart_ns, chart_name, True)]

    def reconcile_sources(self, obj: Mapping[str, object], kind: FluxKind, *, what: str) -> Json | None:
        """Reconcile and wait for each source; UserError naming the source when one fails.

        Returns the object's direct source as it is afterwards (None if it has none).
        """
        direct = cv.source_ref(obj, kind)
        latest: Json | None = None
        for step in self._chain(obj, kind):
            done = self._one(step, what)
            if direct is not None and step[:3] == direct:
                latest = done
        return latest

    def _one(self, step: Step, what: str) -> Json | None:
        kind, namespace, name, optional = step
        label = f"{kind.kind} {namespace}/{name}"
        try:
            obj = self.client.get(kind, namespace, name)
        except FluxNotFound:
            if optional:
                return None  # helm-controller creates the HelmChart when it reconciles the release
            raise
        if _static(kind, obj):
            return obj
        if cv.suspended(obj):
            raise UserError(f"{label}, the source of {what}, is suspended; resume it before reconciling.")
        value = rc.token(avoid=(rc.handled_at(obj), rc.requested_at(obj)))
        self.client.patch(kind, namespace, name, rc.request_patch(value))
        deadline = self._clock() + self.timeout
        while True:
            obj = self.client.get(kind, namespace, name)
            verdict = rc.assess(obj, kind, token=value)
            if verdict.phase == "Succeeded":
                return obj
            if verdict.phase == "Failed":
                raise UserError(
                    f"{label} failed to reconcile, so {what} was not reconciled: {verdict.message}"
                )
            left = deadline - self._clock()
            if left <= 0:
                raise BackendUnavailable(
                    f"Flux {self.client.name}",
                    f"timed out after {self.timeout:.0f}s waiting for {label} ({verdict.message})",
                )
            self._sleep(min(self.poll_interval, left))


def _chart_source(chart: Mapping[str, object], namespace: str) -> Step | None:
    """A HelmChart's source: always in the chart's own namespace (a local reference)."""
    ref = cv.mapping(cv.spec(chart).get("sourceRef"))
    found = kind_named(cv.text(ref.get("kind")))
    name = cv.text(ref.get("name"))
    if found is None or not name:
        return None
    return (found, namespace, name, False)
