"""The bot as its own process, for the benchmarks that measure its memory, threads and CPU: a config
file, a clean environment pointing it at the fakes, its JSON log on stdout."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from sandbox.argocd_fake import JWT_TOKEN
from sandbox.slack_api import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-signing-secret-0123456789"


def argocd_config(tmp: Path, argocd_url: str) -> str:
    """The part every such benchmark shares: its files in `tmp`, no drift scans, one Argo CD."""
    return (
        f"audit: {{database: {tmp / 'audit.db'}}}\n"
        f"git: {{cache_dir: {tmp / 'git'}}}\n"
        "drift: {enabled: false}\n"
        f"argocd: [{{name: main, url: '{argocd_url}', token_env: ARGOCD_TOKEN}}]\n"
    )


def spawn(
    tmp: Path, slack: FakeSlack, config: str, extra_env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """`gitops-bot run` on an ephemeral port with `config` (YAML) in `tmp`; Argo CD's token is the fake's."""
    path = tmp / "gitops-bot.yaml"
    path.write_text(config)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp), "PYTHONPATH": str(ROOT),
           "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
           "SLACK_API_URL": slack.base_url, "ARGOCD_TOKEN": JWT_TOKEN, **(extra_env or {})}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(path), "--host", "127.0.0.1", "--port", "0"],
        cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
