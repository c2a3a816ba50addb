"""The Slack sandbox: FakeSlack (Web API, response_url, uploads), Block Kit limits, SlackSender."""

from __future__ import annotations

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
    if block_id is not None:
        block["block_id"] = block_id
    return block


def button(action_id: str, value: str, text: str = "Go", **extra: Any) -> dict[str, Any]:
    plain = {"type": "plain_text", "text": text}
    return {"type": "button", "action_id": action_id, "text": plain, "value": value, **extra}


APPROVAL_BLOCKS = [
    section("Promote *web* to prod?", "summary"),
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            button("promotion_approve", "req-1", "Approve", style="primary"),
            button("promotion_reject", "req-1", "Reject"),
        ],
    },
]


def api_error(call: Callable[[], Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        call()
    return info.value


def code(call: Callable[[], Any]) -> str:
    return str(api_error(call).response["error"])


# -- Web API -------------------------------------------------------------------------------


def test_auth_test_returns_identity_and_scopes(fake: FakeSlack, client: WebClient) -> None:
    response = client.auth_test()
    assert response["user_id"] == "U0GITOPSBOT"
    assert response["team_id"] == "T0SANDBOX"
    assert "chat:write" in response.headers["x-oauth-scopes"]


def test_post_then_update_keeps_history(fake: FakeSlack, client: WebClient) -> None:
    first = client.chat_postMessage(channel=CHANNEL, text="drift", blocks=[section("drift")])
    second = client.chat_postMessage(channel=CHANNEL, text="other")
    assert first["channel"] == CHANNEL
    assert first["message"]["text"] == "drift"
    assert float(second["ts"]) > float(first["ts"])  # same clock, still unique and increasing

    updated = client.chat_update(channel=CHANNEL, ts=first["ts"], text="resolved", blocks=[section("ok")])
    assert updated["ts"] == first["ts"]
    current = fake.messages(CHANNEL)
    assert [m.text for m in current] == ["resolved", "other"]
    assert current[0].edited
    assert current[0].history[0].text == "drift"
    assert fake.recorded("chat.update")[0].args["blocks"] == [section("ok")]


def test_update_refuses_unknown_and_ephemeral_messages(fake: FakeSlack, client: WebClient) -> None:
    assert code(lambda: client.chat_update(channel=CHANNEL, ts="1.000001", text="x")) == "message_not_found"
    eph = client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="only you")
    assert (
        code(lambda: client.chat_update(channel=CHANNEL, ts=eph["message_ts"], text="x"))
        == "cant_update_message"
    )


def test_post_requires_channel_and_text(fake: FakeSlack, client: WebClient) -> None:
    assert code(lambda: client.api_call("chat.postMessage", json={"text": "x"})) == "channel_not_found"
    with pytest.warns(UserWarning, match="top-level `text`"):
        assert code(lambda: client.chat_postMessage(channel=CHANNEL)) == "no_text"
    assert code(lambda: client.chat_postMessage(channel="bogus", text="x")) == "channel_not_found"
    fake.add_channel("C0SECRET", "secret", is_member=False)
    assert code(lambda: client.chat_postMessage(channel="C0SECRET", text="x")) == "not_in_channel"


def test_blocks_without_text_are_accepted_but_warned(fake: FakeSlack, client: WebClient) -> None:
    with pytest.warns(UserWarning, match="top-level `text`"):
        client.chat_postMessage(channel=CHANNEL, blocks=[section("no fallback")])
    assert len(fake.missing_text_warnings) == 1


def test_form_encoded_and_token_arg_are_accepted(fake: FakeSlack) -> None:
    form = urllib.parse.urlencode({"token": fake.bot_token, "channel": CHANNEL, "text": "from a form"})
    request = urllib.request.Request(fake.base_url + "chat.postMessage", data=form.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as reply:
        body = json.load(reply)
    assert body["ok"] is True
    assert fake.messages(CHANNEL)[0].text == "from a form"
    assert "token" not in fake.recorded("chat.postMessage")[0].args


def test_ephemeral_messages(fake: FakeSlack, client: WebClient) -> None:
    response = client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE", text="psst")
    assert response["message_ts"]
    assert [m.text for m in fake.ephemeral("U0ALICE")] == ["psst"]
    assert fake.ephemeral("U0BOB") == []
    assert fake.messages(CHANNEL) == []


def test_users_and_usergroups(fake: FakeSlack, client: WebClient) -> None:
    fake.add_user("U0ALICE", "alice", "Alice A", email="alice@example.com")
    fake.add_usergroup("S0PROD", "prod-approvers", ["U0ALICE", "U0BOB"])
    user = client.users_info(user="U0ALICE")["user"]
    assert user["profile"]["email"] == "alice@example.com"
    assert user["deleted"] is False
    assert code(lambda: client.users_info(user="U0NOBODY")) == "user_not_found"
    groups = client.usergroups_list(include_users=True)["usergroups"]
    assert [(g["id"], g["handle"], g["users"]) for g in groups] == [
        ("S0PROD", "prod-approvers", ["U0ALICE", "U0BOB"])
    ]
    assert client.usergroups_users_list(usergroup="S0PROD")["users"] == ["U0ALICE", "U0BOB"]
    assert code(lambda: client.usergroups_users_list(usergroup="S0NOPE")) == "no_such_subteam"


def test_permalink_and_conversations_info(fake: FakeSlack, client: WebClient) -> None:
    fake.add_channel("C0ALERTS", "alerts")
    ts = client.chat_postMessage(channel="C0ALERTS", text="x")["ts"]
    assert client.chat_getPermalink(channel="C0ALERTS", message_ts=ts)["permalink"].endswith(
        ts.replace(".", "")
    )
    assert client.conversations_info(channel="C0ALERTS")["channel"]["name"] == "alerts"
    assert code(lambda: client.conversations_info(channel="X1")) == "channel_not_found"


def test_files_upload_v2_end_to_end(fake: FakeSlack, client: WebClient) -> None:
    alert = client.chat_postMessage(channel=CHANNEL, text="drift")
    diff = "--- a\n+++ b\n-old\n+new\n" * 200
    response = client.files_upload_v2(
        content=diff,
        filename="web.diff",
        title="web diff",
        channel=CHANNEL,
        thread_ts=alert["ts"],
        initial_comment="full diff",
    )
    assert response["file"]["title"] == "web diff"
    [stored] = fake.files()
    assert (stored.name, stored.title, stored.channel, stored.thread_ts) == (
        "web.diff",
        "web diff",
        CHANNEL,
        alert["ts"],
    )
    assert stored.text == diff
    share = fake.messages(CHANNEL)[-1]
    assert share.files == (stored.id,)
    assert share.thread_ts == alert["ts"]
    assert share.text == "full diff"


def test_complete_upload_refuses_files_never_uploaded(fake: FakeSlack, client: WebClient) -> None:
    assert (
        code(lambda: client.files_completeUploadExternal(files=[{"id": "F0NOPE", "title": "x"}]))
        == "file_not_found"
    )


def test_auth_errors_and_unknown_method(fake: FakeSlack, client: WebClient) -> None:
    bad = WebClient(token="xoxb-wrong", base_url=fake.base_url)
    assert code(bad.auth_test) == "invalid_auth"
    anonymous = WebClient(base_url=fake.base_url)
    assert code(lambda: anonymous.chat_postMessage(channel=CHANNEL, text="x")) == "not_authed"
    assert code(lambda: client.api_call("chat.frobnicate")) == "unknown_method"
    assert code(lambda: client.api_call("files.upload")) == "method_deprecated"
    assert fake.messages(CHANNEL) == []


@pytest.mark.parametrize(
    ("blocks", "code", "detail"),
    [
        ([section(f"b{i}") for i in range(51)], "invalid_blocks", "blocks: 51 blocks > 50"),
        ([section("x" * 3001)], "invalid_blocks", "blocks[0].text.text: 3001 chars > 3000"),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            "invalid_blocks",
            "blocks[0].text.text: 151 chars > 150",
        ),
        (
            [{"type": "actions", "elements": [button("a", "v" * 2001)]}],
            "invalid_blocks",
            "blocks[0].elements[0].value: 2001 chars > 2000",
        ),
        ([section("a", "dup"), section("b", "dup")], "invalid_blocks", "blocks[1].block_id: duplicate 'dup'"),
        ([section("x" * 2900) for _ in range(5)], "msg_blocks_too_long", "total text 14500 chars > 12000"),
    ],
    ids=["50-blocks", "section-3000", "header-150", "button-value-2000", "duplicate-block-id", "total-12k"],
)
def test_block_kit_limits_are_enforced(
    fake: FakeSlack, client: WebClient, blocks: list[dict[str, Any]], code: str, detail: str
) -> None:
    error = api_error(lambda: client.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks))
    assert error.response["error"] == code
    assert any(detail in line for line in error.response["errors"]), error.response["errors"]
    assert fake.messages(CHANNEL) == []


def test_text_over_40k_is_msg_too_long(fake: FakeSlack, client: WebClient) -> None:
    assert code(lambda: client.chat_postMessage(channel=CHANNEL, text="x" * 40_001)) == "msg_too_long"


def test_rate_limit_retry_handler_retries_and_succeeds(fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", retry_after=0)
    retrying = WebClient(
        token=fake.bot_token,
        base_url=fake.base_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    assert retrying.chat_postMessage(channel=CHANNEL, text="eventually")["ok"] is True
    assert [c.status for c in fake.recorded("chat.postMessage")] == [429, 200]
    assert fake.recorded("chat.postMessage")[0].response == {"ok": False, "error": "ratelimited"}
    assert [m.text for m in fake.messages(CHANNEL)] == ["eventually"]


def test_rate_limit_without_retry_handler_surfaces_retry_after(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", retry_after=7)
    error = api_error(lambda: client.chat_postMessage(channel=CHANNEL, text="x"))
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "7"
    fake.fail_next("users.info", status=500)
    assert api_error(lambda: client.users_info(user="U0GITOPSBOT")).response.status_code == 500


def test_keep_alive_connection_serves_several_requests(fake: FakeSlack) -> None:
    port = urllib.parse.urlsplit(fake.base_url).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for _ in range(3):
            conn.request("POST", "/api/auth.test", headers={"Authorization": f"Bearer {fake.bot_token}"})
            reply = conn.getresponse()
            assert json.loads(reply.read())["ok"] is True
    finally:
        conn.close()


def test_wait_for_times_out_with_a_transcript(fake: FakeSlack, client: WebClient) -> None:
    client.auth_test()
    with pytest.raises(TimeoutError, match=r"auth\.test"):
        fake.wait_for(lambda f: bool(f.messages(CHANNEL)), timeout=0.2)

    def post_later() -> None:
        client.chat_postMessage(channel=CHANNEL, text="late")

    threading.Timer(0.05, post_later).start()
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
    served = {c.method for c in fake.recorded() if c.ok and c.method in contract.methods}
    assert served == set(contract.methods)
    for call in fake.recorded():
        if call.ok and call.method in contract.methods:
            missing = set(contract.methods[call.method].response_required) - set(call.response)
            assert not missing, (call.method, missing)


def test_contract_extract_agrees_with_the_openapi_spec() -> None:
    if not SPEC.exists():
        pytest.skip("shared Slack OpenAPI spec not present")
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    extract = json.loads((REPO / "sandbox/slack_contract.json").read_text(encoding="utf-8"))
    for method, entry in extract["methods"].items():
        (operation,) = spec["paths"]["/" + method].values()
        params = {
            p["name"]: bool(p.get("required", False)) for p in operation["parameters"] if p["name"] != "token"
        }
        assert entry["params"] == params, method
        assert entry["response_required"] == operation["responses"]["200"]["schema"]["required"], method
    for method in extract["extra_methods"]:
        assert "/" + method not in spec["paths"], f"{method} is in the spec now; move it to methods"


def test_sandbox_imports_no_product_or_slack_packages() -> None:
    code = (
        "import sys, sandbox.slack_api, sandbox.slack_client, sandbox.blockkit\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'bot', 'handlers', 'services', 'slack_sdk', 'slack_bolt', 'pytest'}]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# -- response_url ----------------------------------------------------------------------------


def test_response_url_allows_five_posts(fake: FakeSlack) -> None:
    hook = WebhookClient(fake.response_url(CHANNEL, "U0ALICE"))
    statuses = [hook.send(text=f"reply {i}", replace_original=False).status_code for i in range(5)]
    sixth = hook.send(text="too many", replace_original=False)
    assert statuses == [200] * 5
    assert (sixth.status_code, sixth.body) == (404, "expired_url")
    assert len(fake.ephemeral("U0ALICE")) == 5


def test_response_url_expires_after_thirty_minutes(fake: FakeSlack, clock: FakeClock) -> None:
    hook = WebhookClient(fake.response_url(CHANNEL, "U0ALICE"))
    clock.now += 29 * 60
    assert hook.send(text="still fine", replace_original=False).status_code == 200
    clock.now += 2 * 60
    late = hook.send(text="too late", replace_original=False)
    assert (late.status_code, late.body) == (404, "expired_url")


def test_response_url_rejects_invalid_blocks(fake: FakeSlack) -> None:
    hook = WebhookClient(fake.response_url(CHANNEL, "U0ALICE"))
    reply = hook.send(text="t", blocks=[section("x" * 3001)], replace_original=False)
    assert (reply.status_code, reply.body) == (400, "invalid_blocks")
    assert fake.ephemeral() == []


def test_slash_response_url_replaces_its_own_previous_reply(fake: FakeSlack) -> None:
    hook = WebhookClient(fake.response_url(CHANNEL, "U0ALICE"))
    assert hook.send(text="working…", replace_original=False).body == "ok"
    hook.send(text="done", replace_original=True)
    [reply] = fake.ephemeral("U0ALICE")
    assert reply.text == "done"
    assert reply.history[0].text == "working…"
    hook.send(text="public", response_type="in_channel", replace_original=False)
    assert [m.text for m in fake.messages(CHANNEL)] == ["public"]


def test_click_response_url_replaces_or_deletes_the_clicked_message(
    fake: FakeSlack, client: WebClient
) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="approve?", blocks=APPROVAL_BLOCKS)
    other = client.chat_postMessage(channel=CHANNEL, text="unrelated")
    hook = WebhookClient(fake.response_url(CHANNEL, "U0BOB", message_ts=posted["ts"]))
    hook.send(text="Approved by <@U0BOB>", blocks=[section("Approved")], replace_original=True)
    current = fake.find_message(CHANNEL, posted["ts"])
    assert current is not None
    assert not current.ephemeral
    assert current.text == "Approved by <@U0BOB>"
    assert fake.find_message(CHANNEL, other["ts"]) is not None
    hook.send(delete_original=True)
    assert fake.find_message(CHANNEL, posted["ts"]) is None


def test_ack_body_is_replaced_through_the_response_url(fake: FakeSlack) -> None:
    url = fake.response_url(CHANNEL, "U0ALICE")
    fake.record_ack(url, {"text": "On it…"})
    WebhookClient(url).send(text="Synced", replace_original=True)
    [reply] = fake.ephemeral("U0ALICE")
    assert (reply.text, reply.history[0].text) == ("Synced", "On it…")
    assert fake.record_ack(fake.response_url(CHANNEL, "U0ALICE"), {"blocks": [section("")]}) is None
    assert fake.recorded("ack")[-1].response["body"] == "invalid_blocks"


# -- SlackSender -----------------------------------------------------------------------------


class BotStub:
    """A minimal stand-in for the bot's HTTP endpoint: verifies the signature like Bolt does."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.reply: dict[str, Any] | None = None
        verifier = SignatureVerifier(SECRET)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.requests.append((headers, body))
                if not verifier.is_valid_request(body, headers):
                    self._send(401, b'{"error": "invalid request"}')
                else:
                    self._send(200, json.dumps(stub.reply).encode() if stub.reply else b"")

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()


@pytest.fixture
def bot() -> Iterator[BotStub]:
    stub = BotStub()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


@pytest.fixture
def sender(fake: FakeSlack, bot: BotStub) -> SlackSender:
    return SlackSender(bot.url, SECRET, fake)  # real clock: SignatureVerifier checks the 5-minute window


def test_slash_is_signed_and_shaped_like_slack(sender: SlackSender, bot: BotStub) -> None:
    sent = sender.slash("sync web --env prod")
    assert sent.status == 200
    assert sent.elapsed < 3
    headers, body = bot.requests[0]
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    fields = dict(urllib.parse.parse_qsl(body.decode()))
    example = (
        json.loads((CONTRACTS / "examples/slash_command.json").read_text()) if CONTRACTS.exists() else fields
    )
    assert set(fields) == set(example)
    assert (fields["command"], fields["text"], fields["user_id"]) == (
        "/gitops",
        "sync web --env prod",
        "U0ALICE",
    )
    assert fields["response_url"] == sent.response_url


def test_slash_ack_body_becomes_the_first_reply(sender: SlackSender, bot: BotStub, fake: FakeSlack) -> None:
    bot.reply = {"text": "Syncing web…"}
    sent = sender.slash("sync web")
    assert sent.json_body == {"text": "Syncing web…"}
    assert sent.response_url is not None
    WebhookClient(sent.response_url).send(text="web synced", replace_original=True)
    [reply] = fake.ephemeral("U0ALICE")
    assert (reply.text, reply.history[0].text) == ("web synced", "Syncing web…")


def test_click_uses_the_real_button_and_binds_the_response_url(
    sender: SlackSender, bot: BotStub, fake: FakeSlack, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="approve?", blocks=APPROVAL_BLOCKS)["ts"]
    [message] = fake.messages(CHANNEL)
    sent = sender.click(message, "promotion_approve")
    assert sent.status == 200
    headers, body = bot.requests[0]
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    payload = json.loads(urllib.parse.parse_qs(body.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U0BOB"
    assert payload["actions"][0] | {"action_ts": None} == {
        "action_id": "promotion_approve",
        "block_id": "decide",
        "value": "req-1",
        "style": "primary",
        "text": {"type": "plain_text", "text": "Approve"},
        "type": "button",
        "action_ts": None,
    }
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert payload["message"]["blocks"] == APPROVAL_BLOCKS
    assert sent.response_url is not None
    WebhookClient(sent.response_url).send(text="Approved", replace_original=True)
    assert [m.text for m in fake.messages(CHANNEL)] == ["Approved"]


def test_click_refuses_an_absent_button(sender: SlackSender, fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel=CHANNEL, text="approve?", blocks=APPROVAL_BLOCKS)
    [message] = fake.messages(CHANNEL)
    with pytest.raises(ValueError, match="rollback_confirm"):
        sender.click(message, "rollback_confirm")
    eph = Message(
        CHANNEL, "1.000001", "t", APPROVAL_BLOCKS, None, "U0GITOPSBOT", ephemeral=True, visible_to="U0ALICE"
    )
    with pytest.raises(ValueError, match="cannot see"):
        sender.click(eph, "promotion_approve", user_id="U0BOB")


def test_send_raw_returns_rejections(sender: SlackSender, bot: BotStub) -> None:
    body = b"command=%2Fgitops&text=status"
    forged = sender.send_raw(
        body, {"X-Slack-Request-Timestamp": "0", "X-Slack-Signature": sender.sign(body, 0)}
    )
    assert forged.status == 401
    assert forged.json_body == {"error": "invalid request"}
    assert sender.sign(body, 1_700_000_000) == SignatureVerifier(SECRET).generate_signature(
        timestamp="1700000000", body=body
    )


# -- Block Kit validator ----------------------------------------------------------------------


def test_contract_examples_are_valid_block_kit() -> None:
    if not CONTRACTS.exists():
        pytest.skip("shared Slack examples not present")
    for name in ("chat_postMessage_request.json", "chat_update_request.json"):
        payload = json.loads((CONTRACTS / "examples" / name).read_text())
        assert message_errors(payload) == (None, []), name
    approve = json.loads((CONTRACTS / "examples/block_actions_approve.json").read_text())
    assert validate_blocks(approve["message"]["blocks"]) == []


def test_validator_checks_buttons_confirms_and_text_objects() -> None:
    confirm = {
        "title": {"type": "plain_text", "text": "t" * 101},
        "text": {"type": "plain_text", "text": "x"},
    }
    blocks = [
        {
            "type": "actions",
            "elements": [
                button("same", "1", style="warning", confirm=confirm),
                button("same", "2", text="x" * 76),
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": ""}},
        {"type": "header", "text": {"type": "mrkdwn", "text": "h"}},
        {"type": "carousel"},
        {"type": "divider", "colour": "red"},
    ]
    errors = validate_blocks(blocks)
    expected = [
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
    assert sorted(errors) == sorted(expected)


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
