"""`gitops-bot`: run the bot, or check a configuration file without connecting anywhere."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

from bot.app import SlackCredentialsRefused, StartupError, build_runtime, missing_slack_settings, version
from bot.audit_cli import add_audit_commands, run_audit_command
from bot.config import (
    ConfigError,
    LoadedConfig,
    load_config,
    process_environ,
    resolve_config_path,
)
from bot.config_summary import format_summary
from bot.database import add_db_commands, run_db_command
from bot.logs import configure_logging
from services.errors import GitOpsBotError
from services.redaction import Redactor

EXIT_OK, EXIT_CONFIG, EXIT_MISSING_SETTINGS = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        # SUPPRESS: a subcommand's absent --config must not overwrite one given before it.
        default=argparse.SUPPRESS,
        help="configuration file (default: $GITOPS_BOT_CONFIG, else gitops-bot.yaml)",
    )
    parser = argparse.ArgumentParser(
        prog="gitops-bot",
        description="Slack ChatOps for GitOps with Argo CD and Flux.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"gitops-bot {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", parents=[common], help="run the bot (the default)")
    run.add_argument("--port", type=int, help="HTTP port for /slack/events and health (default: server.port)")
    run.add_argument("--host", help="address to listen on (default: server.host)")
    sub.add_parser("check-config", parents=[common], help="validate the configuration and print a summary")
    demo = sub.add_parser(
        "demo", help="try every feature in this terminal: a sandbox with fake Slack, Argo CD and Flux"
    )
    demo.add_argument(
        "--script",
        metavar="FILE",
        type=Path,
        help="replay console lines from FILE (expect: lines check output)",
    )
    add_audit_commands(sub, common)
    add_db_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":  # the demo brings its own config and never reads the operator's
        return _demo(args.script)
    env = dict(process_environ() if environ is None else environ)  # read once, here, and handed down
    try:
        loaded = _load(getattr(args, "config", None), env)
    except ConfigError as exc:
        _print_problems(exc, sys.stderr)
        return EXIT_CONFIG
    if args.command == "audit":
        return run_audit_command(args, loaded)
    if args.command == "db":
        return run_db_command(args, loaded)
    if args.command == "check-config":
        print(format_summary(loaded))
        return EXIT_OK
    return _run(loaded, port=getattr(args, "port", None), host=getattr(args, "host", None))


def _load(flag: str | None, env: Mapping[str, str]) -> LoadedConfig:
    path, explicit = resolve_config_path(flag, env)
    return load_config(path, explicit=explicit, environ=env)


def _print_problems(exc: ConfigError, out: TextIO) -> None:
    print(f"Configuration has {len(exc.problems)} problem(s):", file=out)
    for problem in exc.problems:
        print(f"  - {problem}", file=out)


def _demo(script: Path | None) -> int:
    # Imported here: the sandbox is only needed by the demo, not by the bot serving Slack.
    from bot.demo.session import run_demo

    return run_demo(script=script)


def _no_slack_at_all(loaded: LoadedConfig) -> bool:
    """Nothing about Slack is set: someone trying the bot out, not an operator missing one secret."""
    secrets = loaded.secrets
    return not (secrets.slack_bot_token or secrets.slack_app_token or secrets.slack_signing_secret)


def _run(loaded: LoadedConfig, *, port: int | None, host: str | None) -> int:
    if _no_slack_at_all(loaded):
        print(
            "SLACK_BOT_TOKEN is not set, so this is the local demo (fake Slack, Argo CD and Flux); "
            "to connect a real workspace, export SLACK_BOT_TOKEN and SLACK_APP_TOKEN or "
            "SLACK_SIGNING_SECRET (README: Running it)",
            flush=True,
        )
        return _demo(None)
    missing = missing_slack_settings(loaded)
    if missing:
        print("gitops-bot cannot start: fix these settings in the environment:", file=sys.stderr)
        for line in missing:
            print(f"  - {line}", file=sys.stderr)
        print("Check the whole configuration with: gitops-bot check-config", file=sys.stderr)
        return EXIT_MISSING_SETTINGS
    configure_logging(loaded.settings.logging.level, Redactor(loaded.secrets.values()))
    try:
        runtime = build_runtime(loaded, port=port, host=host).start()
    except SlackCredentialsRefused as exc:  # a setting to fix, like a missing one: same exit code
        print(f"gitops-bot cannot start: {exc}", file=sys.stderr)
        return EXIT_MISSING_SETTINGS
    except (StartupError, GitOpsBotError) as exc:
        print(f"gitops-bot cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    runtime.stop()
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
