"""The demo's CI: a fake Tekton on the demo's Kubernetes API server, with the pipeline that builds web.

`web-ci` (namespace `ci`) clones, tests (lint, unit) and builds; its finally task `report` always runs.
A run takes about eight seconds, so following one in the console is quick. History is already there
when the demo starts: runs of web-ci for recent commits of the deploy repository (the revisions
web runs), the newest Succeeded, an older one Failed. `break_ci` makes the next run fail at
test/unit with a log whose tail holds a token the bot must scrub before it reaches Slack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sandbox.flux_fake import FakeKubernetes
from sandbox.tekton_fake import FakeTekton

CLUSTER = "ci"  # the `tekton:` entry's name
NAMESPACE = "ci"
PIPELINE = "web-ci"
REVISION_PARAM = "revision"
IMAGE_PARAM = "image"  # set by the bot's config (apps[web].pipelines[].params)
TASKS = {"fetch": ["clone"], "test": ["lint", "unit"], "build": ["build", "push"]}
FINALLY = {"report": ["notify"]}
FAILING = ("test", "unit", 1)  # break-ci: task, step, exit code
STEP_SECONDS = 1.0  # a live run: six steps, about eight seconds
HISTORY_STEP_SECONDS = 15.0  # runs before the demo started took as long as real builds
# RFC 2606 reserves .invalid: the Dashboard links show their real shape and can lead nowhere real.
DASHBOARD_URL = "http://tekton-dashboard.demo.invalid/"
# A token as npm prints it; fake, but shaped like one, so the demo shows it being scrubbed.
NPM_TOKEN = "npm_Qm7TzX2bVd9LpR4sKw8YhN3cFj6GaE1uHo5i"  # noqa: S105 - a made-up token for the demo

STEP_LOGS: dict[tuple[str, str], list[str]] = {
    ("fetch", "clone"): [
        "+ git clone --depth 50 https://git.example.com/shop/web.git /workspace/source",
        "Cloning into '/workspace/source'...",
        '+ git checkout "${REVISION}"',
    ],
    ("test", "lint"): ["> web@1.4.3 lint", "> eslint src --max-warnings 0", "✔ no problems (212 files)"],
    ("test", "unit"): [
        "> web@1.4.3 test",
        "> jest --ci",
        "Test Suites: 12 passed, 12 total",
        "Tests:       48 passed, 48 total",
        "Time:        6.102 s",
    ],
    ("build", "build"): [
        "+ buildah bud --layers -t registry.example.com/web:candidate .",
        "STEP 1/7: FROM node:20-alpine AS build",
        'STEP 7/7: CMD ["node", "server.js"]',
        "Successfully tagged registry.example.com/web:candidate",
    ],
    ("build", "push"): [
        "+ buildah push registry.example.com/web:candidate",
        "Writing manifest to image destination",
        "Storing signatures",
    ],
    ("report", "notify"): ["+ curl -fsS -X POST https://ci-status.example.com/hooks/web", "reported"],
}

# The failing step's whole log: the bot shows its last 20 lines, which include the token.
FAILING_LOG = [
    "+ cd /workspace/source",
    "+ set -x",
    f"+ export NPM_TOKEN={NPM_TOKEN}",
    "+ npm ci --no-audit --no-fund",
    "added 812 packages in 9s",
    "+ npm test -- --ci",
    "> web@1.4.3 test",
    "> jest --ci",
    "PASS src/api/client.test.js",
    "PASS src/components/Header.test.js",
    "FAIL src/cart/total.test.js",
    "  ● cart total › applies the discount before tax",
    "    expect(received).toBe(expected) // Object.is equality",
    "    Expected: 90",
    "    Received: 100",
    "      at Object.<anonymous> (src/cart/total.test.js:16:25)",
    "Test Suites: 1 failed, 11 passed, 12 total",
    "Tests:       1 failed, 47 passed, 48 total",
    "Time:        6.214 s",
    "npm ERR! Test failed.  See above for more details.",
    "npm ERR! code ELIFECYCLE",
    "npm ERR! errno 1",
]


@dataclass(frozen=True)
class PastRun:
    """A run of web-ci that happened before the demo started."""

    revision: str  # the value of the `revision` param
    ago: timedelta
    fails: bool = False


def start_ci(kube: FakeKubernetes, history: Sequence[PastRun], image: str) -> FakeTekton:
    """Tekton on `kube` (started), with web-ci defined and `history` replayed, oldest first (the
    runs built `image`, as the bot's config has runs it starts do)."""
    tekton = FakeTekton(kube, tick=0.1, step_seconds=HISTORY_STEP_SECONDS).start()
    try:
        tekton.add_simple_pipeline(
            PIPELINE, TASKS, finally_=FINALLY, params=(REVISION_PARAM, IMAGE_PARAM), namespace=NAMESPACE
        )
        for (task, step), lines in STEP_LOGS.items():
            tekton.set_logs(PIPELINE, task, step, lines)
        for run in sorted(history, key=lambda r: r.ago, reverse=True):
            if run.fails:
                _fail_next(tekton)
            tekton.run_in_past(
                PIPELINE,
                ago=run.ago.total_seconds(),
                namespace=NAMESPACE,
                params={REVISION_PARAM: run.revision, IMAGE_PARAM: image},
            )
        tekton.set_speed(STEP_SECONDS)
    except BaseException:
        tekton.stop()
        raise
    return tekton


def _fail_next(tekton: FakeTekton) -> None:
    task, step, code = FAILING
    tekton.fail_next(PIPELINE, task, step, exit_code=code, log_lines=FAILING_LOG, namespace=NAMESPACE)


def _queued(tekton: FakeTekton) -> bool:
    task = FAILING[0]
    return bool(tekton.script.failures.get((NAMESPACE, PIPELINE, task)))


def break_ci(tekton: FakeTekton) -> str:
    """The next run of web-ci fails at test/unit (once; a second break-ci before it changes nothing)."""
    task, step, code = FAILING
    if not _queued(tekton):
        _fail_next(tekton)
    return (
        f"a commit breaks a unit test: the next run of {PIPELINE} fails at {task}/{step} "
        f"(exit code {code}); its log prints NPM_TOKEN, which the bot must not show"
    )


def fix_ci(tekton: FakeTekton) -> str:
    """Runs of web-ci pass again (a break not yet hit by a run is taken back)."""
    # A dict pop is atomic: the controller, which reads the queue under the store lock, sees the
    # queue before or after, never half of it.
    tekton.script.failures.pop((NAMESPACE, PIPELINE, FAILING[0]), None)
    return f"the test is fixed: the next runs of {PIPELINE} pass"
