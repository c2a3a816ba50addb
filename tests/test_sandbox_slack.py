"""The Slack sandbox: FakeSlack (Web API, response_url, uploads), Block Kit limits, SlackSender."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from sandbox.blockkit import message_errors, total_text_length, validate_blocks
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from sandbox.slack_models import Message, SlackContract

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = Path(__file__).resolve().parents[2] / "shared/contracts/slack"
SPEC = CONTRACTS / "slack_web_openapi_v2.json"
SECRET = "sandbox-signing-secret"
CHANNEL = "C0DEPLOYS"
NO_TEXT_WARNING = "top-level `text`"  # slack_sdk's own UserWarning when blocks come without text


class FakeClock:
    def __init__(self, now: float = 1_732_631_400.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeSlack]:
    with FakeSlack(clock=clock) as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=fake.bot_token, base_url=fake.base_url)


def section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    return block if block_id is None else {**block, "block_id": block_id}


def plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def button(action_id: str, value: str, text: str = "Go", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": plain(text), "value": value, **extra}


def actions(*elements: dict[str, Any], block_id: str = "") -> dict[str, Any]:
    block = {"type": "actions", "elements": list(elements)}
    return {**block, "block_id": block_id} if block_id else block


APPROVE = button("promotion_approve", "req-1", "Approve", style="primary")
APPROVAL_BLOCKS = [
    section("Promote *web* to prod?", "summary"),
    actions(APPROVE, button("promotion_reject", "req-1", "No"), block_id="decide"),
]


def api_error(call: Callable[[], Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        call()
    return info.value


def code(call: Callable[[], Any]) -> str:
    return str(api_error(call).response["error"])


# -- Web API -------------------------------------------------------------------------------


def test_auth(fake: FakeSlack, client: WebClient) -> None:
    response = client.auth_test()
    assert (response["user_id"], response["team_id"]) == ("U0GITOPSBOT", "T0SANDBOX")
    assert "chat:write" in response.headers["x-oauth-scopes"]
    assert code(WebClient(token="xoxb-wrong", base_url=fake.base_url).auth_test) == "invalid_auth"
    anonymous = WebClient(base_url=fake.base_url)
    assert code(lambda: anonymous.chat_postMessage(channel=CHANNEL, text="x")) == "not_authed"
    assert code(lambda: client.api_call("chat.frobnicate")) == "unknown_method"
    assert code(lambda: client.api_call("files.upload")) == "method_deprecated"
    assert fake.messages(CHANNEL) == []


def test_post_then_update_keeps_history(fake: FakeSlack, client: WebClient) -> None:
    first = client.chat_postMessage(channel=CHANNEL, text="drift", blocks=[section("drift")])
    second = client.chat_postMessage(channel=CHANNEL, text="other")
    assert (first["channel"], first["message"]["text"]) == (CHANNEL, "drift")
    assert float(second["ts"]) > float(first["ts"])  # same clock, still unique and increasing
    updated = client.chat_update(channel=CHANNEL, ts=first["ts"], text="resolved", blocks=[section("ok")])
    assert updated["ts"] == first["ts"]
    current = fake.messages(CHANNEL)
    assert [m.text for m in current] == ["resolved", "other"]
    assert (current[0].edited, current[0].history[0].text) == (True, "drift")
    assert fake.recorded("chat.update")[0].args["blocks"] == [section("ok")]


def test_ephemeral_messages_cannot_be_updated(fake: FakeSlack, client: WebClient) -> None:
    eph = client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="only you")
    assert [m.text for m in fake.ephemeral("U0ALICE")] == ["only you"]
    assert fake.ephemeral("U0BOB") == fake.messages(CHANNEL) == []
    eph_ts = eph["message_ts"]
    assert code(lambda: client.chat_update(channel=CHANNEL, ts=eph_ts, text="x")) == "cant_update_message"
    assert code(lambda: client.chat_update(channel=CHANNEL, ts="1.000001", text="x")) == "message_not_found"


def test_post_checks_channel_and_text(fake: FakeSlack, client: WebClient) -> None:
    assert code(lambda: client.api_call("chat.postMessage", json={"text": "x"})) == "channel_not_found"
    assert code(lambda: client.chat_postMessage(channel="bogus", text="x")) == "channel_not_found"
    fake.add_channel("C0SECRET", "secret", is_member=False)
    assert code(lambda: client.chat_postMessage(channel="C0SECRET", text="x")) == "not_in_channel"
    assert code(lambda: client.chat_postMessage(channel=CHANNEL, text="x" * 40_001)) == "msg_too_long"
    with pytest.warns(UserWarning, match=NO_TEXT_WARNING):
        assert code(lambda: client.chat_postMessage(channel=CHANNEL)) == "no_text"
    with pytest.warns(UserWarning, match=NO_TEXT_WARNING):
        client.chat_postMessage(channel=CHANNEL, blocks=[section("no fallback")])  # allowed, but noted
    assert len(fake.missing_text_warnings) == 1


def test_form_body_token_arg_and_keep_alive(fake: FakeSlack) -> None:
    form = urllib.parse.urlencode({"token": fake.bot_token, "channel": CHANNEL, "text": "from a form"})
    request = urllib.request.Request(fake.base_url + "chat.postMessage", data=form.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert json.load(reply)["ok"] is True
    assert fake.messages(CHANNEL)[0].text == "from a form"
    assert "token" not in fake.recorded("chat.postMessage")[0].args
    port = urllib.parse.urlsplit(fake.base_url).port  # one keep-alive connection, several requests
    with contextlib.closing(http.client.HTTPConnection("127.0.0.1", port, timeout=5)) as conn:
        for _ in range(3):
            conn.request("POST", "/api/auth.test", headers={"Authorization": f"Bearer {fake.bot_token}"})
            assert json.loads(conn.getresponse().read())["ok"] is True


def test_users_and_usergroups(fake: FakeSlack, client: WebClient) -> None:
    fake.add_user("U0ALICE", "alice", "Alice A", email="alice@example.com")
    fake.add_usergroup("S0PROD", "prod-approvers", ["U0ALICE", "U0BOB"])
    user = client.users_info(user="U0ALICE")["user"]
    assert (user["profile"]["email"], user["deleted"]) == ("alice@example.com", False)
    assert code(lambda: client.users_info(user="U0NOBODY")) == "user_not_found"
    groups = client.usergroups_list(include_users=True)["usergroups"]
    assert [(g["handle"], g["users"]) for g in groups] == [("prod-approvers", ["U0ALICE", "U0BOB"])]
    assert client.usergroups_users_list(usergroup="S0PROD")["users"] == ["U0ALICE", "U0BOB"]
    assert code(lambda: client.usergroups_users_list(usergroup="S0NOPE")) == "no_such_subteam"


def test_permalink_and_conversations_info(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("C0ALERTS", "alerts")
    ts = client.chat_postMessage(channel="C0ALERTS", text="x")["ts"]
    link = client.chat_getPermalink(channel="C0ALERTS", message_ts=ts)["permalink"]
    assert link.endswith(ts.replace(".", ""))
    assert client.conversations_info(channel="C0ALERTS")["channel"]["name"] == "alerts"
    assert code(lambda: client.conversations_info(channel="X1")) == "channel_not_found"


def test_files_upload_v2_end_to_end(fake: FakeSlack, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="drift")["ts"]
    diff = "--- a\n+++ b\n-old\n+new\n" * 200
    response = client.files_upload_v2(
        content=diff, filename="w.diff", title="W", channel=CHANNEL, thread_ts=ts, initial_comment="full"
    )
    assert response["file"]["title"] == "W"
    [stored] = fake.files()
    assert (stored.name, stored.channel, stored.thread_ts, stored.text) == ("w.diff", CHANNEL, ts, diff)
    share = fake.messages(CHANNEL)[-1]
    assert (share.files, share.thread_ts, share.text) == ((stored.id,), ts, "full")
    never_uploaded: list[dict[str, str | None]] = [{"id": "F0NOPE", "title": "x"}]
    assert code(lambda: client.files_completeUploadExternal(files=never_uploaded)) == "file_not_found"


@pytest.mark.parametrize(
    ("blocks", "error", "hint"),
    [
        ([section(f"b{i}") for i in range(51)], "invalid_blocks", "blocks: 51 blocks > 50"),
        ([section("x" * 3001)], "invalid_blocks", "blocks[0].text.text: 3001 chars > 3000"),
        ([{"type": "header", "text": plain("h" * 151)}], "invalid_blocks", "text.text: 151 chars > 150"),
        ([actions(button("a", "v" * 2001))], "invalid_blocks", "value: 2001 chars > 2000"),
        ([section("a", "dup"), section("b", "dup")], "invalid_blocks", "blocks[1].block_id: duplicate 'dup'"),
        ([section("x" * 2900) for _ in range(5)], "msg_blocks_too_long", "total text 14500 chars > 12000"),
    ],
    ids=["50-blocks", "section-3000", "header-150", "button-value-2000", "duplicate-block-id", "total-12k"],
)
def test_block_kit_limits(fake: FakeSlack, client: WebClient, blocks: Any, error: str, hint: str) -> None:
    failure = api_error(lambda: client.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks))
    assert failure.response["error"] == error
    assert any(hint in line for line in failure.response["errors"]), failure.response["errors"]
    assert fake.messages(CHANNEL) == []


def test_rate_limit_retry_handler_retries_and_succeeds(fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", retry_after=0)
    handler = RateLimitErrorRetryHandler(max_retry_count=1)
    retrying = WebClient(token=fake.bot_token, base_url=fake.base_url, retry_handlers=[handler])
    assert retrying.chat_postMessage(channel=CHANNEL, text="eventually")["ok"] is True
    assert [c.status for c in fake.recorded("chat.postMessage")] == [429, 200]
    assert fake.recorded("chat.postMessage")[0].response == {"ok": False, "error": "ratelimited"}
    assert [m.text for m in fake.messages(CHANNEL)] == ["eventually"]


def test_faults_without_retry_handler_surface(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", retry_after=7)
    failure = api_error(lambda: client.chat_postMessage(channel=CHANNEL, text="x"))
    assert (failure.response.status_code, failure.response.headers["Retry-After"]) == (429, "7")
    fake.fail_next("users.info", status=500)
    assert api_error(lambda: client.users_info(user="U0GITOPSBOT")).response.status_code == 500


def test_wait_for(fake: FakeSlack, client: WebClient) -> None:
    client.auth_test()
    with pytest.raises(TimeoutError, match=r"auth\.test"):
        fake.wait_for(lambda f: bool(f.messages(CHANNEL)), timeout=0.2)
    threading.Timer(0.05, lambda: client.chat_postMessage(channel=CHANNEL, text="late")).start()
    fake.wait_for(lambda f: bool(f.messages(CHANNEL)), timeout=5)


def test_successful_responses_carry_the_spec_required_fields(fake: FakeSlack, client: WebClient) -> None:
    fake.add_user("U0ALICE", "alice", "Alice")
    fake.add_usergroup("S0G", "g", ["U0ALICE"])
    ts = client.chat_postMessage(channel=CHANNEL, text="a")["ts"]
    client.chat_update(channel=CHANNEL, ts=ts, text="b")
    client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="c")
    client.chat_getPermalink(channel=CHANNEL, message_ts=ts)
    client.users_info(user="U0ALICE")
    client.usergroups_list()
    client.usergroups_users_list(usergroup="S0G")
    client.conversations_info(channel=CHANNEL)
    client.files_upload_v2(content="x", filename="x.txt", channel=CHANNEL)
    client.auth_test()
    contract = SlackContract.load()
    served = [c for c in fake.recorded() if c.ok and c.method in contract.methods]
    assert {c.method for c in served} == set(contract.methods)
    for call in served:
        assert set(contract.methods[call.method].response_required) <= set(call.response), call.method


def test_contract_extract_agrees_with_the_openapi_spec() -> None:
    if not SPEC.exists():
        pytest.skip("shared Slack OpenAPI spec not present")
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    extract = json.loads((REPO / "sandbox/slack_contract.json").read_text(encoding="utf-8"))
    for method, entry in extract["methods"].items():
        (operation,) = spec["paths"]["/" + method].values()
        params = {p["name"]: p.get("required", False) for p in operation["parameters"]}
        params.pop("token")
        assert entry["params"] == params, method
        assert entry["response_required"] == operation["responses"]["200"]["schema"]["required"], method
    for method in extract["extra_methods"]:
        assert "/" + method not in spec["paths"], f"{method} is in the spec now; move it to methods"


def test_sandbox_imports_no_product_or_slack_packages() -> None:
    script = "import sys, sandbox.slack_client; print(' '.join(sys.modules))"
    run = subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO, capture_output=True, text=True)
    loaded = {name.split(".")[0] for name in run.stdout.split()}
    assert not loaded & {"bot", "handlers", "services", "slack_sdk", "slack_bolt", "pytest"}


# -- response_url ----------------------------------------------------------------------------


def test_response_url_allows_five_posts_within_thirty_minutes(fake: FakeSlack, clock: FakeClock) -> None:
    hook = WebhookClient(fake.response_url(CHANNEL, "U0ALICE"))
    invalid = hook.send(text="t", blocks=[section("x" * 3001)])  # a refused post is not a use
    assert (invalid.status_code, invalid.body) == (400, "invalid_blocks")
    statuses = [hook.send(text=f"reply {i}", replace_original=False).status_code for i in range(5)]
    sixth = hook.send(text="too many", replace_original=False)
    assert (statuses, sixth.status_code, sixth.body) == ([200] * 5, 404, "expired_url")
    assert len(fake.ephemeral("U0ALICE")) == 5
    late_hook = WebhookClient(fake.response_url(CHANNEL, "U0ALICE"))
    clock.now += 29 * 60
    assert late_hook.send(text="still fine", replace_original=False).status_code == 200
    clock.now += 2 * 60
    late = late_hook.send(text="too late", replace_original=False)
    assert (late.status_code, late.body) == (404, "expired_url")


def test_slash_response_url_replaces_its_own_previous_reply(fake: FakeSlack) -> None:
    hook = WebhookClient(fake.response_url(CHANNEL, "U0ALICE"))
    assert hook.send(text="working…", replace_original=False).body == "ok"
    hook.send(text="done", replace_original=True)
    [reply] = fake.ephemeral("U0ALICE")
    assert (reply.text, reply.history[0].text) == ("done", "working…")
    hook.send(text="public", response_type="in_channel", replace_original=False)
    assert [m.text for m in fake.messages(CHANNEL)] == ["public"]
    # The slash command's HTTP ack body is the reply a later replace_original replaces.
    url = fake.response_url(CHANNEL, "U0ALICE")
    fake.record_ack(url, {"text": "On it…"})
    WebhookClient(url).send(text="Synced", replace_original=True)
    assert [(m.text, m.history[0].text) for m in fake.ephemeral("U0ALICE")][-1] == ("Synced", "On it…")
    assert fake.record_ack(fake.response_url(CHANNEL, "U0ALICE"), {"blocks": [section("")]}) is None
    assert fake.recorded("ack")[-1].response["body"] == "invalid_blocks"


def test_click_response_url_replaces_or_deletes_the_message(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="approve?", blocks=APPROVAL_BLOCKS)
    other = client.chat_postMessage(channel=CHANNEL, text="unrelated")
    hook = WebhookClient(fake.response_url(CHANNEL, "U0BOB", message_ts=posted["ts"]))
    hook.send(text="Approved by <@U0BOB>", blocks=[section("Approved")], replace_original=True)
    current = fake.find_message(CHANNEL, posted["ts"])
    assert current is not None
    assert (current.ephemeral, current.text) == (False, "Approved by <@U0BOB>")
    assert fake.find_message(CHANNEL, other["ts"]) is not None
    hook.send(delete_original=True)
    assert fake.find_message(CHANNEL, posted["ts"]) is None


# -- SlackSender -----------------------------------------------------------------------------


class _BotHandler(BaseHTTPRequestHandler):
    """The "bot" for SlackSender tests: checks signatures as Bolt does, answers a canned ack."""

    server: BotStub

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.requests.append((headers, body))
        if not SignatureVerifier(SECRET).is_valid_request(body, headers):
            status, reply = 401, b'{"error": "invalid request"}'
        else:
            status, reply = 200, json.dumps(self.server.reply).encode() if self.server.reply else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


class BotStub(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _BotHandler)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.reply: dict[str, Any] | None = None
        self.url = f"http://127.0.0.1:{self.server_address[1]}/slack/events"


@pytest.fixture
def bot() -> Iterator[BotStub]:
    stub = BotStub()
    threading.Thread(target=stub.serve_forever, args=(0.02,), daemon=True).start()
    yield stub
    stub.shutdown()
    stub.server_close()


@pytest.fixture
def sender(fake: FakeSlack, bot: BotStub) -> SlackSender:
    return SlackSender(bot.url, SECRET, fake)  # real clock: SignatureVerifier checks the 5-minute window


def test_slash_is_signed_shaped_like_slack_and_acked(sender: SlackSender, bot: BotStub) -> None:
    fake = sender.fake
    sent = sender.slash("sync web --env prod")
    assert (sent.status, sent.elapsed < 3) == (200, True)
    headers, body = bot.requests[0]
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    fields = dict(urllib.parse.parse_qsl(body.decode()))
    if CONTRACTS.exists():
        assert set(fields) == set(json.loads((CONTRACTS / "examples/slash_command.json").read_text()))
    assert (fields["command"], fields["user_id"]) == ("/gitops", "U0ALICE")
    assert fields["text"] == "sync web --env prod"
    assert fields["response_url"] == sent.response_url
    assert fake.ephemeral() == []  # an empty ack shows nothing
    # A JSON ack body is shown as the first reply, which the response_url can later replace.
    bot.reply = {"text": "Syncing web…"}
    sent = sender.slash("sync web")
    assert sent.json_body == {"text": "Syncing web…"}
    assert sent.response_url is not None
    WebhookClient(sent.response_url).send(text="web synced", replace_original=True)
    [reply] = fake.ephemeral("U0ALICE")
    assert (reply.text, reply.history[0].text) == ("web synced", "Syncing web…")


def test_click_uses_the_real_button_and_binds_the_response_url(sender: SlackSender, bot: BotStub) -> None:
    fake = sender.fake
    client = WebClient(token=fake.bot_token, base_url=fake.base_url)
    ts = client.chat_postMessage(channel=CHANNEL, text="approve?", blocks=APPROVAL_BLOCKS)["ts"]
    [message] = fake.messages(CHANNEL)
    with pytest.raises(ValueError, match="rollback_confirm"):
        sender.click(message, "rollback_confirm")  # no such button on the message
    sent = sender.click(message, "promotion_approve")
    headers, body = bot.requests[0]
    assert sent.status == 200
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    payload = json.loads(urllib.parse.parse_qs(body.decode())["payload"][0])
    assert (payload["type"], payload["user"]["id"]) == ("block_actions", "U0BOB")
    action = payload["actions"][0]
    assert {k: v for k, v in action.items() if k != "action_ts"} == {**APPROVE, "block_id": "decide"}
    container = {"type": "message", "message_ts": ts, "channel_id": CHANNEL, "is_ephemeral": False}
    assert payload["container"] == container
    assert payload["message"]["blocks"] == APPROVAL_BLOCKS
    assert sent.response_url is not None
    WebhookClient(sent.response_url).send(text="Approved", replace_original=True)
    assert [m.text for m in fake.messages(CHANNEL)] == ["Approved"]


def test_click_on_someone_elses_ephemeral_message_is_refused(sender: SlackSender) -> None:
    eph = Message(CHANNEL, "1.000001", "t", APPROVAL_BLOCKS, None, "U0GITOPSBOT", True, visible_to="U0ALICE")
    with pytest.raises(ValueError, match="cannot see"):
        sender.click(eph, "promotion_approve", user_id="U0BOB")


def test_send_raw_returns_rejections(sender: SlackSender, bot: BotStub) -> None:
    body = b"command=%2Fgitops&text=status"
    headers = {"X-Slack-Request-Timestamp": "0", "X-Slack-Signature": sender.sign(body, 0)}
    stale = sender.send_raw(body, headers)
    assert (stale.status, stale.json_body) == (401, {"error": "invalid request"})
    expected = SignatureVerifier(SECRET).generate_signature(timestamp="1700000000", body=body)
    assert sender.sign(body, 1_700_000_000) == expected


# -- Block Kit validator ----------------------------------------------------------------------


def test_validator_checks_buttons_confirms_and_text_objects() -> None:
    confirm = {"title": plain("t" * 101), "text": plain("x")}
    blocks = [
        actions(button("same", "1", style="warning", confirm=confirm), button("same", "2", "x" * 76)),
        {"type": "section", "text": {"type": "mrkdwn", "text": ""}},
        {"type": "header", "text": {"type": "mrkdwn", "text": "h"}},
        {"type": "carousel"},
        {"type": "divider", "colour": "red"},
    ]
    assert validate_blocks(blocks) == [
        "blocks[0].elements[0].style: 'warning' is not one of primary, danger",
        "blocks[0].elements[0].confirm.title.text: 101 chars > 100",
        "blocks[0].elements[0].confirm.confirm: expected a text object",
        "blocks[0].elements[0].confirm.deny: expected a text object",
        "blocks[0].elements[1].action_id: duplicate 'same'",
        "blocks[0].elements[1].text.text: 76 chars > 75",
        "blocks[1].text.text: expected a non-empty string",
        "blocks[2].text.type: 'mrkdwn' is not one of plain_text",
        "blocks[3].type: unknown block type 'carousel'",
        "blocks[4].colour: unknown property",
    ]


def test_validator_counts_limits_of_fields_context_actions_and_ids() -> None:
    field = {"type": "mrkdwn", "text": "f"}
    blocks = [
        {"type": "section", "block_id": "b" * 256, "fields": [field] * 11},
        {"type": "context", "elements": [field] * 11},
        {"type": "actions", "elements": [button(f"a{i}", "v") for i in range(26)]},
        {"type": "markdown", "text": "m" * 12_001},
    ]
    assert validate_blocks(blocks) == [
        "blocks[0].block_id: 256 chars > 255",
        "blocks[0].fields: 11 items > 10",
        "blocks[1].elements: 11 elements > 10",
        "blocks[2].elements: 26 elements > 25",
        "blocks[3].text: 12001 chars > 12000",
    ]


def test_message_errors_codes() -> None:
    assert message_errors({"text": "ok"}) == (None, [])
    assert message_errors({})[0] == "no_text"
    assert message_errors({"text": "x" * 40_001})[0] == "msg_too_long"
    assert message_errors({"blocks": "not json"})[0] == "invalid_blocks_format"
    assert message_errors({"blocks": json.dumps([section("x" * 3001)])})[0] == "invalid_blocks"
    assert message_errors({"text": "t", "blocks": [section("y" * 2500)] * 5})[0] == "msg_blocks_too_long"
    assert total_text_length([section("abc"), {"type": "divider"}]) == 3
    assert validate_blocks({"type": "section"}) == ["blocks: expected an array"]
    if CONTRACTS.exists():  # the shared examples were checked against the same limits
        for name in ("chat_postMessage_request.json", "chat_update_request.json"):
            assert message_errors(json.loads((CONTRACTS / "examples" / name).read_text())) == (None, []), name
        approve = json.loads((CONTRACTS / "examples/block_actions_approve.json").read_text())
        assert validate_blocks(approve["message"]["blocks"]) == []
