"""The `pipeline_succeeded` validator: the revision being promoted passed the app's Tekton pipeline.

For each configured pipeline of the app that applies to the target environment (or only those the
validator names), the runs of the pipeline are listed (one request per namespace) and the runs for
this promotion kept: their param (`param`, else the pipeline's `revision_param`, else `revision`)
or label (`label`) equals the source's revision — full SHAs and short-SHA prefixes of at least 7
characters match either way — or a value the promotion sets (an image tag, a chart version). The
newest of those, in `tkn`'s order, must have Succeeded.

Not passable with `--force`: a red build is not a judgement call. A pass is an `info` finding, so
the card shows which run vouched for the promotion, with its Dashboard link. Messages are plain
text (the card escapes them); a run's param or label value is never shown, only ours it matched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from services.errors import GitOpsBotError, bound
from services.extensions.model import Finding, PlannedChange
from services.pipelines import PipelineRuns, PipelineTarget, RunRef
from services.settings.extensions import PipelineSucceeded
from services.tekton import convert
from services.tekton.dashboard import pipelinerun_url
from services.tekton.model import Failure, PipelineRunSummary

SHORT_SHA = 7  # the shortest SHA prefix that counts as naming a commit (git's default abbreviation)
_HEX = re.compile(rf"[0-9a-fA-F]{{{SHORT_SHA},64}}")
# What a suggested `--param k=v` may carry as it is: a SHA, a tag, a version (no quoting needed).
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
DEFAULT_PARAM = "revision"


def same_revision(a: str, b: str) -> bool:
    """Equal, or both hex SHAs where the shorter (at least 7 characters) starts the longer."""
    if a == b:
        return True
    if _HEX.fullmatch(a) and _HEX.fullmatch(b):
        short, long = sorted((a.lower(), b.lower()), key=len)
        return long.startswith(short)
    return False


def shown(value: str) -> str:
    """A value as a message names it: a full SHA shortened to 7 characters, anything long cut."""
    if _HEX.fullmatch(value) and len(value) >= 40:
        return value[:SHORT_SHA]
    return bound(value, 60)


@dataclass(frozen=True)
class Matcher:
    """How one pipeline's runs are matched to the promotion: by a param or a label."""

    key: str
    by_label: bool

    @property
    def what(self) -> str:
        return f"label `{self.key}`" if self.by_label else f"param `{self.key}`"

    def value(self, run: PipelineRunSummary) -> str | None:
        return run.label(self.key) if self.by_label else run.param(self.key)

    def matches(self, run: PipelineRunSummary, wanted: Sequence[str]) -> bool:
        found = self.value(run)
        return found is not None and any(same_revision(found.strip(), w) for w in wanted)


def matcher(spec: PipelineSucceeded, target: PipelineTarget) -> Matcher:
    if spec.label is not None:
        return Matcher(spec.label, by_label=True)
    return Matcher(spec.param or target.config.revision_param or DEFAULT_PARAM, by_label=False)


def wanted_values(change: PlannedChange) -> list[str]:
    """What a run for this promotion was run for: the source's revision, then each new value."""
    values = [change.revision] if change.revision else []
    values += [c.new for c in change.changes if c.new]
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def targets_of(
    spec: PipelineSucceeded, pipelines: PipelineRuns, change: PlannedChange
) -> list[PipelineTarget]:
    """The app's pipelines that apply to the target environment (only those named, if any)."""
    return [
        t
        for t in pipelines.targets.all
        if t.app == change.app
        and t.config.applies_to(change.env)
        and (not spec.pipelines or t.pipeline in spec.pipelines)
    ]


def pipeline_findings(
    spec: PipelineSucceeded, pipelines: PipelineRuns | None, change: PlannedChange
) -> list[Finding]:
    if change.action != "promote" or change.app is None:
        return []
    if pipelines is None:  # check-config refuses this; kept closed should it ever happen
        message = "could not check the app's pipeline: no Tekton cluster is configured (`tekton:`)"
        return [Finding(spec.kind, spec.severity, message)]
    targets = targets_of(spec, pipelines, change)
    if not targets:
        return []  # no pipeline builds this app for this environment: nothing to vouch for
    wanted = wanted_values(change)
    if not wanted:
        message = (
            f"could not check pipeline `{targets[0].pipeline}`: the revision being promoted is unknown "
            f"(the status of {change.source_env or 'the source'} could not be read); promote again"
        )
        return [Finding(spec.kind, spec.severity, message)]
    gate = _Gate(spec, pipelines, change, wanted)
    return [gate.verdict(target) for target in targets]


@dataclass
class _Gate:
    spec: PipelineSucceeded
    pipelines: PipelineRuns
    change: PlannedChange
    wanted: list[str]

    def __post_init__(self) -> None:
        # One list per (cluster, namespace), however many of the app's pipelines live there.
        self._listed: dict[tuple[str, str], list[PipelineRunSummary] | GitOpsBotError] = {}

    def _runs(self, target: PipelineTarget) -> list[PipelineRunSummary]:
        place = (target.cluster, target.namespace)
        if place not in self._listed:
            try:
                self._listed[place] = self.pipelines.list_namespace(*place)
            except GitOpsBotError as exc:
                self._listed[place] = exc
        found = self._listed[place]
        if isinstance(found, GitOpsBotError):
            raise found
        return [r for r in found if r.pipeline == target.pipeline]

    def _finding(self, message: str, url: str | None = None) -> Finding:
        return Finding(self.spec.kind, self.spec.severity, message, url)

    def verdict(self, target: PipelineTarget) -> Finding:
        name = f"pipeline `{target.pipeline}`"
        try:
            runs = self._runs(target)
        except GitOpsBotError as exc:  # its text names the cluster and a reason, never a credential
            where = f"{target.cluster}/{target.namespace}"
            return self._finding(f"could not check {name} in {where}: {bound(str(exc), 240)}")
        match = matcher(self.spec, target)
        mine = convert.sort_like_tkn(r for r in runs if match.matches(r, self.wanted))
        if not mine:
            return self._finding(self._no_run(target, match))
        run = mine[0]
        url = self._link(target, run)
        label = f"run `{run.name}`"
        status = run.status
        if status.kind == "succeeded":
            passed = f"{name}: {label} {bound(status.word, 60)} for {self._for(run, match)}"
            return Finding(self.spec.kind, "info", passed, url)
        if not status.done:
            return self._finding(
                f"{name}: the newest {label} for {self._for(run, match)} has not finished "
                f"({bound(status.word, 60)}): wait for it to succeed, then promote again",
                url,
            )
        failure = self._failure(target, run)
        why = f": {_failure_text(failure)}" if failure is not None else ""
        if failure is not None and failure.pipeline_task:
            url = self._link(target, run, failure)  # opens the failing task and step
        return self._finding(
            f"{name}: the newest {label} for {self._for(run, match)} ended {bound(status.word, 60)}{why}; "
            "fix the build, run the pipeline again and promote once it succeeds",
            url,
        )

    def _for(self, run: PipelineRunSummary, match: Matcher) -> str:
        """Our value the run matched (never the run's own text), as `revision abc1234`."""
        found = (match.value(run) or "").strip()
        ours = next((w for w in self.wanted if same_revision(found, w)), found)
        return f"{match.key} `{shown(ours)}`"

    def _failure(self, target: PipelineTarget, run: PipelineRunSummary) -> Failure | None:
        try:
            return self.pipelines.read(RunRef(target.cluster, target.namespace, run.name)).failure
        except GitOpsBotError:  # the status word still says it did not succeed
            return None

    def _link(
        self, target: PipelineTarget, run: PipelineRunSummary, failure: Failure | None = None
    ) -> str | None:
        base = self.pipelines.dashboard_base(target.cluster)
        if base is None:
            return None
        task = failure.pipeline_task if failure is not None else None
        step = failure.step if failure is not None else None
        return pipelinerun_url(base, target.namespace, run.name, pipeline_task=task, step=step)

    def _no_run(self, target: PipelineTarget, match: Matcher) -> str:
        values = " or ".join(f"`{shown(v)}`" for v in self.wanted[:4])
        problem = f"no run of pipeline `{target.pipeline}` was for {values} (matched by {match.what})"
        command = self._start_command(target, match)
        if command is not None:
            return f"{problem}: start one with `{command}`, and promote again once it succeeds"
        where = f" {self.change.env}" if self.change.env else ""
        return (
            f"{problem}: start one for this revision (see `/gitops pipelines {target.app}{where}`), "
            "and promote again once it succeeds"
        )

    def _start_command(self, target: PipelineTarget, match: Matcher) -> str | None:
        """`/gitops pipeline NAME --param k=v` when it would start a run this check then finds:
        matched by a param the config does not pin, with a value we know, the name unambiguous."""
        if match.by_label or match.key in target.config.params:
            return None
        value: str | None
        if self.spec.param is None or match.key in (target.config.revision_param, DEFAULT_PARAM):
            value = self.change.revision  # the param carries the commit
        else:  # a param of the validator's choosing: only an unambiguous promoted value fits it
            news = list(dict.fromkeys(c.new for c in self.change.changes if c.new))
            value = news[0] if len(news) == 1 else None
        if value is None or not _PLAIN_VALUE.fullmatch(value):
            return None
        same = {t.key for t in self.pipelines.targets.all if t.pipeline == target.pipeline}
        here = {key for key in same if key[1] == target.namespace}
        if len(here) != 1:
            return None  # the same pipeline and namespace in two clusters: list them instead
        namespace = f" --namespace {target.namespace}" if len(same) > 1 else ""
        return f"/gitops pipeline {target.pipeline}{namespace} --param {match.key}={value}"


def _failure_text(failure: Failure) -> str:
    if not failure.pipeline_task:  # it failed before any task ran (a missing param, no Pipeline)
        return bound(failure.message or failure.reason or "it did not start", 160)
    text = f"task `{failure.pipeline_task}`"
    if failure.step:
        text += f", step `{failure.step}`"
    if failure.exit_code is not None:
        text += f" exited {failure.exit_code}"
    else:
        text += " failed"
    return text
