"""The fake Argo CD's watch stream over real httpx streams (docs/argocd-api.md §4.9)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.argocd_fake import FakeArgoCD
from tests.sandbox_argocd_support import AUTH, SWAGGER, ManualClock, get_app, wait_for

STREAM = "/api/v1/stream/applications"
SSE = {"Accept": "text/event-stream"}


class Reader:
    """Reads one stream on a thread: the raw bytes, parsed events, keep-alives, how it ended."""

    def __init__(self, base_url: str, params: Any = None, *, sse: bool = True, token: bool = True) -> None:
        headers = {**(AUTH if token else {}), **(SSE if sse else {})}
        self._client = httpx.Client(
            base_url=base_url, headers=headers, timeout=httpx.Timeout(None, connect=5)
        )
        self._params = params or {}
        self.sse = sse
        self.raw = bytearray()
        self.status = 0
        self.content_type = ""
        self.body = b""  # a non-200 answer
        self.failure: Exception | None = None
        self.ended = threading.Event()
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("GET", STREAM, params=self._params) as response:
                self._response = response
                if response.status_code != 200:
                    self.body = response.read()  # before the status: tests wait for it, then read this
                self.status, self.content_type = response.status_code, response.headers["content-type"]
                if response.status_code != 200:
                    return
                for chunk in response.iter_raw():
                    self.raw += chunk
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: closed from the test thread
            self.failure = exc
        finally:
            self.ended.set()

    def lines(self) -> list[bytes]:
        separator = b" \n\n" if self.sse else b"\n"
        text = bytes(self.raw).replace(b":\n", b"") if self.sse else bytes(self.raw)
        return [part for part in text.split(separator) if part]

    def messages(self) -> list[dict[str, Any]]:
        found = []
        for line in self.lines():
            if self.sse:
                assert line.startswith(b"data: "), line
                line = line.removeprefix(b"data: ")
            found.append(json.loads(line))
        return found

    def events(self) -> list[dict[str, Any]]:
        return [message["result"] for message in self.messages() if "result" in message]

    def summary(self) -> list[tuple[str, str]]:
        return [(e["type"], e["application"]["metadata"]["name"]) for e in self.events()]

    def wait_events(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        wait_for(lambda: len(self.events()) >= count, timeout)
        return self.events()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._client.close()
        self.ended.wait(2)


@pytest.fixture
def open_stream(argocd: FakeArgoCD) -> Iterator[Any]:
    readers: list[Reader] = []

    def start(params: Any = None, **options: Any) -> Reader:
        reader = Reader(argocd.base_url, params, **options)
        readers.append(reader)
        wait_for(lambda: reader.status or reader.ended.is_set())
        return reader

    yield start
    argocd.cut_streams(abrupt=True)  # a reader blocked in a read ends with its stream
    for reader in readers:
        reader.close()


def rv(event: dict[str, Any]) -> int:
    return int(event["application"]["metadata"]["resourceVersion"])


# -- snapshot, changes and framing -------------------------------------------------------------------


def test_snapshot_then_changes_over_server_sent_events(argocd: FakeArgoCD, open_stream: Any) -> None:
    argocd.add_app("web", project="shop")
    argocd.add_app("api", project="shop")
    reader = open_stream()
    assert (reader.status, reader.content_type) == (200, "text/event-stream")
    snapshot = reader.wait_events(2)
    assert reader.summary() == [("ADDED", "api"), ("ADDED", "web")]  # sorted by name
    assert snapshot[1]["application"] == argocd.app("web")  # the full Application, as Get gives it

    argocd.set_health("web", "Degraded", "pods crash")
    change = reader.wait_events(3)[2]
    assert (change["type"], change["application"]["status"]["health"]["status"]) == ("MODIFIED", "Degraded")
    assert rv(change) > rv(snapshot[1])
    # Framing: `data: <json> \n\n`, each event exactly one JSON document.
    first = json.dumps({"result": snapshot[0]}, separators=(",", ":")).encode()
    assert bytes(reader.raw).startswith(b"data: " + first + b" \n\n")
    assert argocd.open_streams() == 1
    [recorded] = argocd.requests(STREAM)
    assert (recorded.method, recorded.status, recorded.headers["accept"]) == ("GET", 200, "text/event-stream")


def test_without_the_sse_header_events_are_ndjson_and_there_are_no_keepalives(
    argocd: FakeArgoCD, open_stream: Any
) -> None:
    argocd.keepalive_seconds = 0.05
    argocd.add_app("web")
    reader = open_stream(sse=False)
    assert reader.content_type == "application/json"
    reader.wait_events(1)
    time.sleep(0.3)  # six keep-alive periods
    argocd.set_health("web", "Progressing", "rolling out")
    reader.wait_events(2)
    raw = bytes(reader.raw)
    assert raw.endswith(b"}\n")
    assert b":\n" not in raw.replace(b'":', b"")
    assert [json.loads(line)["result"]["type"] for line in raw.splitlines()] == ["ADDED", "MODIFIED"]


def test_sse_keepalive_comment_lines_arrive_every_period(clock: ManualClock) -> None:
    with FakeArgoCD(keepalive_seconds=0.1, clock=clock) as argocd:
        reader = Reader(argocd.base_url)
        try:
            wait_for(lambda: bytes(reader.raw).count(b":\n") >= 3, timeout=3)
            assert bytes(reader.raw).replace(b":\n", b"") == b""  # no apps: only keep-alives
        finally:
            reader.close()


def test_stream_event_shape_matches_the_swagger(argocd: FakeArgoCD, open_stream: Any) -> None:
    if not SWAGGER.exists():
        pytest.skip("shared contracts not checked out next to the repo")
    swagger = json.loads(SWAGGER.read_text())
    wrapper = swagger["paths"][STREAM]["get"]["responses"]["200"]["schema"]["properties"]
    event = swagger["definitions"]["v1alpha1ApplicationWatchEvent"]["properties"]
    error = swagger["definitions"]["runtimeStreamError"]["properties"]
    argocd.add_app("web")
    reader = open_stream()
    reader.wait_events(1)
    argocd.stream_error()
    assert reader.ended.wait(3)
    added, failed = reader.messages()
    assert set(added) <= set(wrapper)
    assert set(added["result"]) == set(event)
    assert set(failed) <= set(wrapper)
    assert set(failed["error"]) <= set(error)


# -- resourceVersion ---------------------------------------------------------------------------------


def test_resource_version_floor_and_resume_after_a_cut(
    argocd: FakeArgoCD, client: httpx.Client, open_stream: Any
) -> None:
    argocd.add_app("api")
    argocd.add_app("web")
    first = open_stream()
    seen = max(rv(event) for event in first.wait_events(2))
    argocd.cut_streams()
    assert first.ended.wait(2)
    assert first.failure is None
    assert argocd.open_streams() == 0

    argocd.set_health("api", "Degraded")  # while disconnected
    resumed = open_stream({"resourceVersion": str(seen)})
    argocd.set_health("web", "Degraded")
    events = resumed.wait_events(1)
    time.sleep(0.1)
    # No snapshot with a resourceVersion and no name, as upstream: the gap is the client's to re-list.
    assert resumed.summary() == [("MODIFIED", "web")]
    assert rv(events[0]) > seen
    listed = client.get("/api/v1/applications").json()
    assert int(listed["items"][0]["metadata"]["resourceVersion"]) > seen  # api's gap change, by List

    # With `name`, the snapshot is sent even with a resourceVersion, and the floor still applies.
    api_rv = int(get_app(client, "api")["metadata"]["resourceVersion"])
    caught_up = open_stream({"name": "api", "resourceVersion": str(seen)})
    assert [rv(e) for e in caught_up.wait_events(1)] == [api_rv]
    beyond = open_stream({"name": "api", "resourceVersion": str(api_rv + 1)})
    argocd.set_health("api", "Healthy")
    assert beyond.wait_events(1)[0]["type"] == "MODIFIED"
    assert len(beyond.events()) == 1  # the ADDED below the floor was filtered


# -- fields and dedup ---------------------------------------------------------------------------------


def test_fields_takes_any_path_and_identical_payloads_are_deduplicated(
    argocd: FakeArgoCD, open_stream: Any
) -> None:
    argocd.add_app("web", history=2)
    fields = "result.type,result.application.metadata.name,result.application.status.health"
    trimmed = open_stream({"fields": fields}, sse=False)
    history = open_stream({"fields": "result.application.status.history"})
    assert trimmed.wait_events(1) == [
        {
            "type": "ADDED",
            "application": {"metadata": {"name": "web"}, "status": {"health": {"status": "Healthy"}}},
        }
    ]
    assert [h["id"] for h in history.wait_events(1)[0]["application"]["status"]["history"]] == [1, 2]

    argocd.push_revision("web", image="registry.example.com/web:2.0.0")  # health unchanged
    argocd.push_revision("web", image="registry.example.com/web:2.0.1")
    argocd.set_health("web", "Degraded", "crash loop")
    wait_for(lambda: len(trimmed.events()) >= 3)
    time.sleep(0.1)
    assert [(e["type"], e["application"]["status"]["health"]["status"]) for e in trimmed.events()] == [
        ("ADDED", "Healthy"),
        ("MODIFIED", "Healthy"),  # the second push (and the controller's reconcile) sent nothing
        ("MODIFIED", "Degraded"),
    ]


def test_fields_exclusion_mode_drops_the_paths(argocd: FakeArgoCD, open_stream: Any) -> None:
    argocd.add_app("web")
    reader = open_stream({"fields": "-result.application.status.resources,result.application.spec"})
    [event] = reader.wait_events(1)
    assert "spec" not in event["application"]
    assert "resources" not in event["application"]["status"]
    assert event["application"]["status"]["sync"]["status"] == "Synced"


# -- filters and auth ---------------------------------------------------------------------------------


def test_name_projects_selector_and_rbac_filters(argocd: FakeArgoCD, open_stream: Any) -> None:
    argocd.add_app("web", project="shop", labels={"team": "pay"})
    argocd.add_app("api", project="shop", labels={"team": "core"})
    argocd.add_app("db", project="data", labels={"team": "pay"})
    argocd.add_app("vault", project="shop", labels={"team": "pay"})
    argocd.add_app("other-ns", project="shop", namespace="team-a")
    argocd.forbid("vault")
    named = open_stream({"name": "web"})
    other_ns = open_stream({"name": "other-ns", "appNamespace": "team-a"})
    shop = open_stream([("projects", "shop"), ("projects", "nope")])
    pay = open_stream({"selector": "team in (pay)"})
    assert named.wait_events(1)
    assert named.summary() == [("ADDED", "web")]
    assert other_ns.wait_events(1)
    assert other_ns.summary() == [("ADDED", "other-ns")]
    shop.wait_events(3)
    pay.wait_events(2)
    assert [name for _, name in shop.summary()] == ["api", "other-ns", "web"]
    assert [name for _, name in pay.summary()] == ["db", "web"]

    argocd.set_health("db", "Degraded")
    argocd.set_health("vault", "Degraded")  # forbidden: nobody sees it
    argocd.set_health("web", "Degraded")  # the last change: once it arrived, the others would have too
    for reader, count in ((named, 2), (shop, 4), (pay, 4)):
        reader.wait_events(count)
    assert named.summary()[1:] == [("MODIFIED", "web")]
    assert shop.summary()[3:] == [("MODIFIED", "web")]
    assert pay.summary()[2:] == [("MODIFIED", "db"), ("MODIFIED", "web")]


def test_a_bad_selector_is_a_500_and_a_missing_token_a_401(argocd: FakeArgoCD, open_stream: Any) -> None:
    bad = open_stream({"selector": "team in (pay"})
    assert bad.status == 500
    assert json.loads(bad.body)["code"] == 2
    anonymous = open_stream(token=False)
    assert anonymous.status == 401
    assert json.loads(anonymous.body) == {
        "error": "no session information",
        "code": 16,
        "message": "no session information",
    }
    assert argocd.open_streams() == 0


# -- test hooks -------------------------------------------------------------------------------------


def test_refused_streams_answer_404_until_routed_again(argocd: FakeArgoCD, open_stream: Any) -> None:
    argocd.add_app("web")
    argocd.refuse_streams(True)
    refused = open_stream(token=False)  # the proxy answers before Argo CD checks the token
    assert refused.status == 404
    assert json.loads(refused.body) == {"error": "Not Found", "code": 5, "message": "Not Found"}
    argocd.refuse_streams(False)
    assert open_stream().wait_events(1)[0]["type"] == "ADDED"
    assert [r.status for r in argocd.requests(STREAM)] == [404, 200]


def test_an_injected_error_is_the_last_event(argocd: FakeArgoCD, open_stream: Any) -> None:
    argocd.add_app("web")
    sse, ndjson = open_stream(), open_stream(sse=False)
    sse.wait_events(1)
    ndjson.wait_events(1)
    argocd.stream_error(message="permission denied", http_code=403)
    expected = {
        "error": {
            "grpc_code": 7,
            "http_code": 403,
            "message": "permission denied",
            "http_status": "Forbidden",
        }
    }
    for reader in (sse, ndjson):
        assert reader.ended.wait(2)
        assert reader.failure is None
        assert reader.messages()[-1] == expected
    assert bytes(sse.raw).endswith(
        b"data: " + json.dumps(expected, separators=(",", ":")).encode() + b" \n\n"
    )
    assert argocd.open_streams() == 0


def test_an_abrupt_cut_closes_the_connection_mid_body(argocd: FakeArgoCD, open_stream: Any) -> None:
    argocd.add_app("web")
    reader = open_stream()
    reader.wait_events(1)
    argocd.cut_streams(abrupt=True)
    assert reader.ended.wait(2)
    assert isinstance(reader.failure, httpx.RemoteProtocolError)
    assert argocd.open_streams() == 0


def test_a_client_that_leaves_is_unregistered(argocd: FakeArgoCD, open_stream: Any) -> None:
    argocd.keepalive_seconds = 0.05  # the next write finds the socket closed
    reader = open_stream()
    assert argocd.open_streams() == 1
    reader.close()
    wait_for(lambda: argocd.open_streams() == 0, timeout=3)


def test_created_and_deleted_apps(argocd: FakeArgoCD, open_stream: Any) -> None:
    reader = open_stream()
    argocd.add_app("web")
    argocd.delete_app("web")
    added, deleted = reader.wait_events(2)
    assert (added["type"], deleted["type"]) == ("ADDED", "DELETED")
    assert rv(deleted) > rv(added)
    assert deleted["application"]["metadata"]["name"] == "web"
    assert argocd.apps() == []


def test_an_auto_sync_deploy_streams_as_modified_events(
    argocd: FakeArgoCD, client: httpx.Client, open_stream: Any
) -> None:
    argocd.add_app("web", auto_sync=True, history=2)
    reader = open_stream({"name": "web"})
    reader.wait_events(1)
    sha = argocd.push_revision("web", image="registry.example.com/web:3.0.0", message="bump web")

    def deployed() -> bool:
        status = reader.events()[-1]["application"]["status"]
        return len(status.get("history", [])) == 3 and "reconciledAt" in status

    wait_for(deployed)
    changes = reader.events()[1:]
    assert {e["type"] for e in changes} == {"MODIFIED"}
    versions = [rv(e) for e in changes]
    assert versions == sorted(set(versions))
    phases = [(e["application"]["status"].get("operationState") or {}).get("phase") for e in changes]
    assert "Running" in phases
    assert phases[-1] == "Succeeded"
    last = changes[-1]["application"]["status"]
    assert last["history"][-1]["revision"] == sha
    assert last["history"][-1]["initiatedBy"] == {"automated": True}
    # The stream keeps up with the store: its newest event is the app as GET serves it (the controller
    # may still touch it once more after the deploy, so compare once both have settled).
    wait_for(lambda: reader.events()[-1]["application"] == get_app(client, "web"))


def test_stop_with_an_open_stream_returns_promptly(clock: ManualClock) -> None:
    argocd = FakeArgoCD(clock=clock).start()
    argocd.add_app("web")
    reader = Reader(argocd.base_url)
    wait_for(lambda: reader.raw)
    started = time.monotonic()
    argocd.stop()
    assert time.monotonic() - started < 1.0
    assert reader.ended.wait(1.0)
    reader.close()
