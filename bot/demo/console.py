"""The demo's chat console: one line in, one action on the sandbox world.

`/gitops …` is a signed slash command from the current user in #deploys; a number clicks that
button; `/as`, `/reason`, `break`, `fix`, `scan` and friends drive the world. `handle` returns
False when a line could not be carried out, which stops a script.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.demo.config import DEPLOYS_CHANNEL, USERS, DemoUser
from bot.demo.feed import ButtonRef, Feed, Output
from bot.demo.world import DemoWorld

REPLY_WAIT_SECONDS = 2.0  # after a command, wait this long for the bot's first answer before prompting
MAX_SLEEP_SECONDS = 60.0

HELP = (
    "Console commands:",
    "  /gitops TEXT        the slash command, as the current user in #deploys (try /gitops help)",
    "  N                   click button [N] as the current user (Slack's confirm dialog counts as OK)",
    "  /reason TEXT        text for the reason box of the next button you click (e.g. Reject)",
    "  /as NAME            act as alice, bob, carol or dave (a viewer)",
    "  break NAME          change NAME behind Git's back (web-ENV: Argo CD apps; api-ENV: Flux objects)",
    "  fix NAME            undo that",
    "  break-ci            the next run of the Tekton pipeline web-ci fails (test/unit, exit code 1)",
    "  fix-ci              runs of web-ci pass again",
    "  ci-push             CI releases a new api build to dev and Flux deploys it: #deploy-feed shows it",
    "  scan                run a drift scan now (alerts go to #gitops-alerts)",
    "  scan-ci             run the pipeline monitor now (failed runs of web-ci go to #gitops-alerts)",
    "  prs                 the pull requests on the fake GitHub (web's prod branch is protected)",
    "  check-pass [N]      the required check ci/web passes on PR #N's head (default: the newest open PR)",
    "  check-fail [N]      it fails there (check-pass afterwards re-runs it green)",
    "  pr-close [N]        close PR #N on GitHub without merging, as someone outside Slack would",
    "  autocheck on|off    ci/web passes by itself 5 s after each new head; on unless replaying a script",
    "  autoscan on|off     the background drift scan (every 20 s) and pipeline monitor (every 10 s);",
    "                      on unless replaying a script",
    "  world               what the sandbox holds (ENV: dev, staging, prod)",
    "  logs [N]            the bot's last N log lines (JSON, as in production)",
    "  webhooks [N]        the last N events the webhook notifier delivered (signed, checked)",
    "  sleep SECONDS       wait (for scripts)",
    "  help                this list",
    "  quit                leave (also Ctrl-D); the sandbox is stopped and deleted",
)


@dataclass
class Console:
    world: DemoWorld
    feed: Feed
    output: Output
    user: DemoUser = USERS[0]
    reason: str | None = None
    quit: bool = False

    def say(self, *lines: str) -> None:
        self.output.emit(list(lines))

    def handle(self, line: str) -> bool:
        line = line.strip()
        if not line:
            return True
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        action = self._commands().get(word.lower())
        if line.isdigit():
            action, rest = self.click_text, line
        if action is None:
            hint = f" (did you mean /gitops {line}?)" if not line.startswith("/") else ""
            self.say(f"unknown console command: {word}{hint}; type help")
            return False
        try:
            return action(rest)
        except Exception as exc:  # one failed line (a timeout, a refused connection) must not end the session
            self.say(f"could not do {line!r}: {type(exc).__name__}: {exc}")
            return False

    def _commands(self) -> dict[str, Callable[[str], bool]]:
        return {
            "/gitops": self.slash,
            "/as": self.switch_user,
            "/reason": self.set_reason,
            "break": self.break_target,
            "fix": self.fix_target,
            "break-ci": self.break_ci,
            "fix-ci": self.fix_ci,
            "ci-push": self.ci_push,
            "scan": self.scan,
            "scan-ci": self.scan_ci,
            "autoscan": self.autoscan,
            "prs": self.show_pulls,
            "check-pass": self.check_pass,
            "check-fail": self.check_fail,
            "pr-close": self.close_pull,
            "autocheck": self.autocheck,
            "world": self.show_world,
            "logs": self.show_logs,
            "webhooks": self.show_webhooks,
            "sleep": self.sleep,
            "help": self.show_help,
            "quit": self.leave,
            "exit": self.leave,
        }

    # -- talking to the bot -------------------------------------------------------------------------------

    def slash(self, text: str) -> bool:
        mark = self.output.mark()
        calls = len(self.world.slack.recorded())
        with self.feed.paused():
            sent = self.world.sender.slash(
                text, user_id=self.user.id, user_name=self.user.name, channel_id=DEPLOYS_CHANNEL
            )
            if sent.status == 200:
                self._show_ack_if_it_stays(calls, sent.json_body or {})
        if sent.status != 200:
            self.say(f"Slack could not deliver the command: HTTP {sent.status} {sent.body[:200]}")
            return False
        self.output.wait_change(mark, REPLY_WAIT_SECONDS)
        return True

    def _show_ack_if_it_stays(self, calls: int, ack: dict[str, object]) -> None:
        """Slack shows a command's ack at once and the bot replaces or deletes it when the answer is
        ready. The sandbox records the ack only once the HTTP answer is read, which can be after the
        bot already answered: such a late ack is never shown. Any other ack is shown only if it stays
        a moment, so a quick answer prints once instead of "working…" and then the answer."""
        ack_message = None
        for message in reversed(self.world.slack.ephemeral(self.user.id)):
            if message.channel == DEPLOYS_CHANNEL and message.text == ack.get("text") and not message.edited:
                ack_message = message
                break
        if ack_message is None:
            return
        methods = [call.method for call in self.world.slack.recorded()[calls:]]
        if "ack" in methods and "response_url" in methods[: methods.index("ack")]:
            self.feed.forget(ack_message)
        else:
            self.feed.hold(ack_message)

    def click_text(self, text: str) -> bool:
        return self.click(int(text))

    def click(self, number: int) -> bool:
        ref = self.feed.button(number)
        if ref is None:
            self.say(f"no button [{number}] on screen")
            return False
        message = self.world.slack.find_message(ref.channel, ref.ts)
        if message is None:
            self.say(f"the message with button [{number}] is gone")
            return False
        if message.ephemeral and message.visible_to != self.user.id:
            owner = self.world.names().get(message.visible_to or "", message.visible_to)
            self.say(f"only @{owner} sees that message: /as {owner} to click it")
            return False
        inputs = self._inputs(message.blocks)
        mark = self.output.mark()
        self.say(self._clicking(ref, bool(inputs)))
        try:
            sent = self.world.sender.click(
                message, ref.action_id, user_id=self.user.id, user_name=self.user.name, inputs=inputs
            )
        except ValueError:
            self.say(f"button [{number}] is no longer on that message")
            return False
        self.reason = None
        if sent.status != 200:
            self.say(f"Slack could not deliver the click: HTTP {sent.status}")
            return False
        self.output.wait_change(mark + 1, REPLY_WAIT_SECONDS)
        return True

    def _clicking(self, ref: ButtonRef, with_reason: bool) -> str:
        said = f"@{self.user.name} clicks [{ref.number}] {ref.label}"
        if ref.confirm is not None:
            said += f" and confirms “{ref.confirm[0]}”"
        if with_reason:
            said += f" (reason: {self.reason})"
        return said

    def _inputs(self, blocks: list[dict[str, object]]) -> dict[str, str]:
        """The typed `/reason` goes into every text input of the message (Slack sends them with the click)."""
        if not self.reason:
            return {}
        found: dict[str, str] = {}
        for block in blocks:
            element = block.get("element") if block.get("type") == "input" else None
            if isinstance(element, dict) and element.get("action_id"):
                found[str(element["action_id"])] = self.reason
        return found

    def switch_user(self, name: str) -> bool:
        wanted = name.lstrip("@").lower()
        for user in USERS:
            if wanted in (user.name, user.id.lower()):
                self.user = user
                self.say(f"you are now @{user.name} ({user.real_name}: {user.roles})")
                return True
        self.say(f"no such user: {name or '(none)'}; pick one of " + ", ".join(u.name for u in USERS))
        return False

    def set_reason(self, text: str) -> bool:
        self.reason = text or None
        self.say(f"reason for the next click: {text}" if text else "reason cleared")
        return True

    # -- changing the world ---------------------------------------------------------------------------------

    def break_target(self, name: str) -> bool:
        return self._change(name, self.world.break_target, "break")

    def fix_target(self, name: str) -> bool:
        return self._change(name, self.world.fix_target, "fix")

    def _change(self, name: str, change: Callable[[str], str], verb: str) -> bool:
        try:
            said = change(name)
        except KeyError:
            self.say(f"{verb} what? one of: " + ", ".join(self.world.targets()))
            return False
        self.say(f"⚙ {said}")
        return True

    def break_ci(self, _rest: str) -> bool:
        self.say(f"⚙ {self.world.break_ci()}")
        return True

    def ci_push(self, _rest: str) -> bool:
        self.say(f"⚙ {self.world.ci_push()}")
        return True

    def fix_ci(self, _rest: str) -> bool:
        self.say(f"⚙ {self.world.fix_ci()}")
        return True

    def scan(self, _rest: str) -> bool:
        calls = self.world.scan()
        self.say(f"⚙ drift scan done ({calls} Slack call{'s' if calls != 1 else ''})")
        self.feed.poll()  # the alerts it posted, before the next command runs
        return True

    def scan_ci(self, _rest: str) -> bool:
        posted = self.world.scan_ci()
        self.say(f"⚙ pipeline monitor done ({posted} failed run{'s' if posted != 1 else ''} posted)")
        self.feed.poll()  # the posts it made, before the next command runs
        return True

    def autoscan(self, rest: str) -> bool:
        if rest in ("on", "off"):
            self.world.set_autoscan(rest == "on")
        elif rest:
            self.say("autoscan on | off")
            return False
        self.say(f"background drift scan and pipeline monitor: {'on' if self.world.autoscan() else 'off'}")
        return True

    # -- the Git host -----------------------------------------------------------------------------------

    def show_pulls(self, _rest: str) -> bool:
        github = self.world.github
        pulls = github.pulls()
        if not pulls:
            self.say("no pull request yet: /gitops promote web --to prod opens one (prod is protected)")
            return True
        for pull in pulls:
            check = github.check_state(pull.head_sha) if pull.state == "open" else "-"
            self.say(f"PR #{pull.number} [{pull.state}] {pull.title}", f"  {pull.url}  ci/web: {check}")
        return True

    def check_pass(self, rest: str) -> bool:
        return self._decide(rest, "success")

    def check_fail(self, rest: str) -> bool:
        return self._decide(rest, "failure")

    def _decide(self, rest: str, conclusion: str) -> bool:
        try:
            pull = self.world.github.decide(_pull_number(rest), conclusion)
        except (LookupError, ValueError) as exc:
            self.say(str(exc))
            return False
        mark = "✅ passed" if conclusion == "success" else "❌ failed"
        self.say(f"⚙ ci/web {mark} on PR #{pull.number}'s head {pull.head_sha[:7]}")
        return True

    def close_pull(self, rest: str) -> bool:
        try:
            pull = self.world.github.close(_pull_number(rest))
        except (LookupError, ValueError) as exc:
            self.say(str(exc))
            return False
        self.say(f"⚙ PR #{pull.number} closed on GitHub without merging (not from Slack)")
        return True

    def autocheck(self, rest: str) -> bool:
        if rest in ("on", "off"):
            self.world.github.auto = rest == "on"
        elif rest:
            self.say("autocheck on | off")
            return False
        auto = self.world.github.auto
        self.say(
            "ci/web "
            + ("passes by itself after each new head" if auto else "waits for check-pass / check-fail")
        )
        return True

    # -- the console itself ------------------------------------------------------------------------------

    def show_world(self, _rest: str) -> bool:
        self.say(*self.world.describe())
        return True

    def show_logs(self, rest: str) -> bool:
        count = int(rest) if rest.isdigit() else 10
        lines = self.world.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        self.say(*(lines[-count:] or ["(the log is empty)"]))
        return True

    def show_webhooks(self, rest: str) -> bool:
        count = int(rest) if rest.isdigit() else 10
        delivered = self.world.webhook.deliveries()
        if not delivered:
            self.say("(no events delivered yet: the notifier sends each audited event within seconds)")
            return True
        names = self.world.names()
        shown = min(count, len(delivered))
        lines = [f"{len(delivered)} events delivered to {self.world.webhook.url}; the last {shown}:"]
        for item in delivered[-count:]:
            event = item.event
            actor = str(event.get("actor", ""))
            who = names.get(actor, actor)
            check = "signature ok" if item.signed else "NOT SIGNED"
            lines.append(
                f"  {event.get('type', '?')}  {event.get('target') or '-'}  by {who}: "
                f"{event.get('summary', '')}  [{check}]"
            )
        self.say(*lines)
        return True

    def sleep(self, rest: str) -> bool:
        try:
            seconds = float(rest)
        except ValueError:
            self.say("sleep SECONDS")
            return False
        time.sleep(min(max(seconds, 0.0), MAX_SLEEP_SECONDS))
        return True

    def show_help(self, _rest: str) -> bool:
        self.say(*HELP)
        return True

    def leave(self, _rest: str) -> bool:
        self.quit = True
        return True


def _pull_number(rest: str) -> int | None:
    """The PR number typed (`12` or `#12`); None for "the newest open one"."""
    text = rest.strip().lstrip("#")
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"a PR number, like 1 or #1 (not {rest!r}); prs lists them")
    return int(text)
