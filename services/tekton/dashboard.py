"""Tekton Dashboard links (docs/tekton-api.md §7).

The Dashboard uses a hash router: `{base}/#/namespaces/{ns}/pipelineruns/{name}`, with
`?pipelineTask=…&step=…&retry=…` to open one task, step or earlier attempt (the same form
Pipelines-as-Code builds). `base` is the deployment's URL from config; these functions only format.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode


def _base(base: str) -> str:
    return base.rstrip("/")


def _seg(value: str) -> str:
    return quote(value, safe="")


def pipelineruns_url(base: str, namespace: str) -> str:
    """The list page of one namespace."""
    return f"{_base(base)}/#/namespaces/{_seg(namespace)}/pipelineruns"


def pipelinerun_url(
    base: str,
    namespace: str,
    name: str,
    *,
    pipeline_task: str | None = None,
    step: str | None = None,
    retry: int | None = None,
) -> str:
    """A run; with `pipeline_task` one of its tasks, with `step` (no `step-` prefix) one step."""
    url = f"{_base(base)}/#/namespaces/{_seg(namespace)}/pipelineruns/{_seg(name)}"
    query: list[tuple[str, str]] = []
    if pipeline_task:
        query.append(("pipelineTask", pipeline_task))
        if step:
            query.append(("step", step.removeprefix("step-")))
        if retry is not None:
            query.append(("retry", str(retry)))
    return f"{url}?{urlencode(query, quote_via=quote)}" if query else url


def taskrun_url(base: str, namespace: str, name: str) -> str:
    return f"{_base(base)}/#/namespaces/{_seg(namespace)}/taskruns/{_seg(name)}"


__all__ = ["pipelinerun_url", "pipelineruns_url", "taskrun_url"]
