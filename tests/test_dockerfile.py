"""The Dockerfile, parsed into stages and instructions, holds the image's promises.

No container engine runs in CI, so the image is checked as text: a small parser (line
continuations, comments, parser directives, global ARGs in FROM, exec and shell forms) and one
test per property the deployment relies on.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.settings.model import ServerSettings

ROOT = Path(__file__).resolve().parent.parent
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|libc6-dev|python3?-dev|rustc|cargo)\b")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # raw text after the keyword, continuations joined
    line: int

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of exec form (`["a", "b"]`), or None for shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list), self
        assert all(isinstance(v, str) for v in value), self
        return value

    def flags(self) -> dict[str, str]:
        """Leading `--name=value` options (COPY --from=…, HEALTHCHECK --interval=…)."""
        out = {}
        for word in shlex.split(self.args):
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            out[name] = value
        return out


@dataclass
class Stage:
    image: str
    name: str | None
    index: int
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for word in shlex.split(instruction.args):
                key, sep, value = word.partition("=")
                assert sep, f"line {instruction.line}: use ENV key=value"
                values[key] = value
        return values


def parse(text: str) -> tuple[list[Instruction], list[Stage]]:
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue  # blank, comment or parser directive (# syntax=…)
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped, as Docker does
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "ARG" and not stages:
            name, _, default = instruction.args.partition("=")
            global_args[name.strip()] = default.strip()
        elif instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--platform")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name, len(stages)))
        else:
            assert stages or instruction.keyword == "ARG", f"line {instruction.line}: before any FROM"
            if stages:
                stages[-1].instructions.append(instruction)
    return instructions, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse((ROOT / "Dockerfile").read_text())[1]


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def _user(final: Stage) -> tuple[str, str]:
    user = final.last("USER")
    assert user is not None, "the image must not run as root: no USER"
    name, _, group = user.args.strip().partition(":")
    return name, group


def _installs(stage: Stage) -> list[str]:
    """Package names from apt-get install / apk add / pip install in the stage's RUNs."""
    found = []
    for run in stage.all("RUN"):
        for command in re.split(r"&&|;|\|\|", run.args):
            words = command.split()
            for verb in (["apt-get", "install"], ["apt", "install"], ["apk", "add"], ["pip", "install"]):
                if words[: len(verb)] == verb:
                    found += [w for w in words[len(verb) :] if not w.startswith("-")]
    return found


def test_the_parser_understands_continuations_comments_and_stages() -> None:
    text = (
        "# syntax=docker/dockerfile:1\nARG BASE=python:3.11-slim\nFROM ${BASE} AS build\n"
        "RUN a \\\n    # inner comment\n    && b\nFROM $BASE\nUSER 1:2\n"
    )
    instructions, stages = parse(text)
    assert [i.keyword for i in instructions] == ["ARG", "FROM", "RUN", "FROM", "USER"]
    assert instructions[2].args == "a && b"
    assert [(s.image, s.name) for s in stages] == [("python:3.11-slim", "build"), ("python:3.11-slim", None)]
    assert _user(stages[1]) == ("1", "2")


def test_multi_stage_on_a_slim_python_base(stages: list[Stage], final: Stage) -> None:
    assert len(stages) >= 2, "a build stage and a runtime stage"
    assert re.fullmatch(r"python:3\.1[1-9][.\d]*-slim(-\w+)?(@sha256:[0-9a-f]{64})?", final.image), (
        final.image
    )
    assert final.image == stages[0].image, "the venv must run on the Python it was built with"


def test_runs_as_a_numeric_non_root_user(final: Stage) -> None:
    user, group = _user(final)
    # Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert user.isdigit(), user
    assert int(user) > 0, "not root"
    assert group.isdigit(), group
    assert int(group) > 0, "not the root group"
    assert any(w[w.index("--uid") + 1] == user for w in _commands(final, "useradd")), "no such user"


def test_no_compilers_in_the_final_stage(final: Stage) -> None:
    installed = _installs(final)
    assert installed, "the runtime stage installs its packages with apt-get"
    assert not [p for p in installed if COMPILERS.search(p)], installed
    copied = [c for c in final.all("COPY") if "from" in c.flags()]
    assert all("/opt/venv" in c.args for c in copied), "only the virtualenv comes from the build stage"


def test_git_is_installed_in_the_final_stage(final: Stage) -> None:
    assert "git" in _installs(final)


def test_the_virtualenv_is_copied_from_the_build_stage(stages: list[Stage], final: Stage) -> None:
    builders = {s.name: s for s in stages[:-1] if s.name}
    copies = [c for c in final.all("COPY") if c.flags().get("from") in builders]
    assert copies, "COPY --from=<build stage>"
    source, dest = shlex.split(copies[0].args)[-2:]
    assert source == dest == "/opt/venv"
    build = builders[copies[0].flags()["from"]]
    runs = " ".join(r.args for r in build.all("RUN"))
    assert "python -m venv /opt/venv" in runs
    assert "pip install ." in runs
    assert final.env()["PATH"].startswith("/opt/venv/bin:")


def test_stopsignal_is_sigterm_and_reaches_the_bot(final: Stage) -> None:
    stop = final.last("STOPSIGNAL")
    assert stop is not None
    assert stop.args == "SIGTERM"
    entrypoint = final.last("ENTRYPOINT")
    # Exec form: a shell form would make /bin/sh PID 1, and sh does not pass SIGTERM on.
    assert entrypoint is not None
    assert entrypoint.exec_form is not None
    assert "gitops-bot" in entrypoint.exec_form
    if "tini" in entrypoint.exec_form[0]:
        assert "tini" in _installs(final)


def test_healthcheck_hits_healthz_on_the_exposed_port(final: Stage) -> None:
    check = final.last("HEALTHCHECK")
    assert check is not None
    flags = check.flags()
    assert {"interval", "timeout", "retries"} <= set(flags)
    command = check.args[check.args.index("CMD") + 3 :].strip()
    exec_form = json.loads(command)
    exposed = {int(p.split("/")[0]) for e in final.all("EXPOSE") for p in e.args.split()}
    port = ServerSettings().port
    assert exposed == {port}, "EXPOSE the default server.port"
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(exec_form)


def _commands(stage: Stage, program: str) -> list[list[str]]:
    """Each `program …` command of the stage's RUNs, as words."""
    found = []
    for run in stage.all("RUN"):
        for command in re.split(r"&&|;|\|\|", run.args):
            words = shlex.split(command)
            if words and words[0] == program:
                found.append(words)
    return found


def test_data_is_a_writable_volume_owned_by_the_user(final: Stage) -> None:
    declared = {p for v in final.all("VOLUME") for p in (v.exec_form or v.args.split())}
    assert "/data" in declared
    uid, _ = _user(final)
    [useradd] = _commands(final, "useradd")
    assert useradd[useradd.index("--uid") + 1] == uid
    owners = {words[-2].split(":")[0] for words in _commands(final, "chown") if words[-1] == "/data"}
    assert owners, "chown … /data"
    assert owners <= {uid, useradd[-1]}, "/data must be writable by the runtime user"
    env = final.env()
    assert env["HOME"] == "/data", "git writes its config and known hosts under HOME"
    assert env["GITOPS_BOT_CONFIG"] == "/config/gitops-bot.yaml"


def test_the_build_stage_copies_everything_the_package_needs(stages: list[Stage]) -> None:
    """Buildable: each COPY source exists, and every package pyproject ships is copied."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = stages[0]
    copied: set[str] = set()
    for copy in build.all("COPY"):
        if "from" in copy.flags():
            continue
        *sources, _dest = [w for w in shlex.split(copy.args) if not w.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            copied.add(source.rstrip("/"))
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= copied
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, f"packages not copied: {packages - copied}"
    entrypoint = stages[-1].last("ENTRYPOINT")
    assert entrypoint is not None
    assert entrypoint.exec_form is not None
    assert "gitops-bot" in pyproject["project"]["scripts"], "the ENTRYPOINT's console script"
