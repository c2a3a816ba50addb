"""Warnings a running bot gives up front: no access grants, a backend not answering at start.

Both through the real HTTP server (`GET /readyz`: a "warnings" list that never fails readiness)
and the startup log.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bot.app import Runtime, build_runtime
from sandbox.slack_api import FakeSlack
from tests.conftest import config_for

GRANTS = "access:\n  grants:\n    - role: deployer\n      users: [U0ALICE]\n"


def _readyz(runtime: Runtime) -> tuple[int, dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{runtime.server.port}/readyz", timeout=15) as r:
        return r.status, json.loads(r.read())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bot.app" and r.levelno == logging.WARNING]


def test_no_access_grants_is_a_warning_not_a_failure(
    tmp_path: Path, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    runtime = build_runtime(config_for(tmp_path, fake_slack), port=0, host="127.0.0.1").start()
    try:
        status, body = _readyz(runtime)
    finally:
        runtime.stop()
    assert (status, body["status"]) == (200, "ready")
    [warning] = body["warnings"]
    assert warning.startswith("access.grants is empty, so everyone is a viewer")
    assert warning in _warnings(caplog)


def test_configured_grants_leave_no_warning(
    tmp_path: Path, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    loaded = config_for(tmp_path, fake_slack, extra_yaml=GRANTS)
    runtime = build_runtime(loaded, port=0, host="127.0.0.1").start()
    try:
        status, body = _readyz(runtime)
    finally:
        runtime.stop()
    assert (status, body["warnings"]) == (200, [])
    assert not [w for w in _warnings(caplog) if "access.grants" in w]


def test_a_backend_unreachable_at_start_is_warned_about(
    tmp_path: Path, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    # What a NetworkPolicy with its placeholders left in does to the Argo CD rule.
    caplog.set_level(logging.INFO)
    argocd = (
        f"argocd:\n  - name: main\n    url: http://127.0.0.1:{_closed_port()}\n    token_env: ARGOCD_TOKEN\n"
    )
    loaded = config_for(tmp_path, fake_slack, extra_yaml=GRANTS + argocd, extra_env={"ARGOCD_TOKEN": "t0ken"})
    runtime = build_runtime(loaded, port=0, host="127.0.0.1").start()
    try:
        deadline = time.monotonic() + 20
        while True:
            status, body = _readyz(runtime)
            if body["warnings"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        runtime.stop()
    assert (status, body["status"]) == (200, "ready")  # a warning, not a readiness failure
    [warning] = body["warnings"]
    assert warning.startswith("argocd:main did not answer at start")
    assert "docs/deploy.md" in warning
    assert "t0ken" not in json.dumps(body)
    assert warning in _warnings(caplog)
