"""The webhook notifiers at work: events go into the outbox, one thread delivers them.

`notify` runs in the thread that appended the audit row, so it only hands the event over (no disk,
no HTTP): a writer thread puts what arrived into the outbox in one transaction per batch (one row
per notifier whose `events` match) and moves the notifiers' cursor over the audit trail; on start,
audit rows past the cursor — appended while no delivery ran, or lost between an append and its
outbox write by a crash — are taken from the trail itself, so the trail is the source and nothing
audited is lost. The delivery thread sends what is due, oldest first, then sleeps until the next
row is due or it is woken. A failed attempt is retried with exponential backoff (`Backoff`: 2 s doubling to
5 min, with jitter; a 429/503 Retry-After is honoured); a permanent refusal (a 4xx) or the
notifier's `max_attempts` makes the row dead, with an audit row. On start it picks up whatever a
previous process left pending; on stop it leaves pending rows for the next start.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from services.extensions.events import encode, events_for
from services.extensions.model import Event
from services.extensions.outbox import Outbox, OutboxRow, Queued
from services.extensions.webhook import WebhookSender
from services.settings.extensions import WebhookNotifier
from services.store.db import Database

log = logging.getLogger(__name__)

LEASE = 30.0  # seconds a claimed row is left alone by others: longer than any one attempt
BATCH = 20  # rows claimed per pass; the stop flag is checked between rows
IDLE = 60.0  # the longest sleep with nothing due (a row another process queued is seen by then)
PRUNE_EVERY = 3600.0
RETRY_AFTER_CAP = 300.0  # a receiver's Retry-After is honoured up to this
CATCH_UP_CHUNK = 5000  # audit rows read at a time when catching up on start
GATHER = 0.02  # seconds the writer waits for company: one outbox transaction for a burst of rows


@dataclass(frozen=True)
class Backoff:
    """Seconds before attempt n+1: base·2^(n-1), capped, times a random factor in [1-jitter, 1]."""

    base: float = 2.0
    cap: float = 300.0
    jitter: float = 0.5

    def delay(self, attempts: int, *, rand: Callable[[], float] = random.random) -> float:
        raw = min(self.cap, self.base * 2.0 ** max(0, attempts - 1))
        return raw * (1 - self.jitter * rand())


class WebhookDelivery:
    def __init__(
        self,
        database: Database,
        senders: Mapping[str, WebhookSender],
        *,
        client: httpx.Client | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = Outbox(database, clock=lambda: datetime.fromtimestamp(clock(), UTC))
        self.senders = dict(senders)
        self.backoff = backoff or Backoff()
        self._client = client
        self._clock = clock
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self._pruned = 0.0
        self._incoming: list[tuple[list[Queued], int | None]] = []  # handed over, not yet written
        self._incoming_lock = threading.Lock()
        self._arrived = threading.Event()

    # -- what the hooks call ----------------------------------------------------------------------

    def notify(self, event: Event) -> int:
        """Hand the event over for each notifier that wants it (written to the outbox by the writer
        thread, or at once when none runs); how many notifiers want it."""
        items = self._items(event)
        with self._incoming_lock:
            self._incoming.append((items, _audit_id(event.id)))
        if self._writer is None:
            self.flush()
        else:
            self._arrived.set()
        return len(items)

    def flush(self) -> int:
        """Write what was handed over into the outbox now; how many rows were new."""
        with self._incoming_lock:
            taken, self._incoming = self._incoming, []
        if not taken:
            return 0
        items = [item for batch, _ in taken for item in batch]
        ids = [audit_id for _, audit_id in taken if audit_id is not None]
        new = self.outbox.enqueue_many(items, due=self._clock(), upto=max(ids) if ids else None)
        if new:
            self._wake.set()
        return new

    def start(self) -> WebhookDelivery:
        if self.senders and self._thread is None:
            self.catch_up()
            self._writer = threading.Thread(target=self._write, name="webhook-outbox", daemon=True)
            self._writer.start()
            self._thread = threading.Thread(target=self._run, name="webhook-delivery", daemon=True)
            self._thread.start()
        return self

    def catch_up(self) -> int:
        """Take into the outbox the events of audit rows past each notifier's cursor; how many."""
        cursors = self.outbox.cursors(list(self.senders))
        low, new = min(cursors.values(), default=0), 0
        while True:
            rows = self.outbox.audit_rows_after(low, CATCH_UP_CHUNK)
            if not rows:
                return new
            items = [
                item
                for row in rows
                for event in events_for(row)
                for item in self._items(event)
                if row.id is not None and row.id > cursors[item[0]]
            ]
            low = rows[-1].id or low
            new += self.outbox.enqueue_many(items, due=self._clock(), upto=low)

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop the threads (waiting at most `timeout`); what was handed over is written to the
        outbox first, and pending rows stay for the next start. False when the delivery thread was
        still in an attempt: it ends after that one, delivering nothing more."""
        self._stopping.set()
        self._arrived.set()
        self._wake.set()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.join(timeout)
        self.flush()
        thread, self._thread = self._thread, None
        if thread is None:
            if self._client is not None:
                self._client.close()
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _items(self, event: Event) -> list[Queued]:
        wanting = [s for s in self.senders.values() if s.wants(event.type)]
        body = encode(event) if wanting else ""
        return [(s.name, event.id, event.type, event.target, body) for s in wanting]

    def _write(self) -> None:
        """The writer thread: one outbox transaction for whatever arrived meanwhile."""
        while not self._stopping.is_set():
            self._arrived.wait()
            self._stopping.wait(GATHER)  # the appends around this one share its transaction
            self._arrived.clear()
            try:
                self.flush()
            except Exception:  # the database closing under us: the cursor lets the next start catch up
                if self._stopping.is_set():
                    return
                log.exception("webhook outbox write failed")
                time.sleep(1.0)

    # -- the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    sent = self.deliver_due()
                    self._maybe_prune()
                    wait = 0.0 if sent else self._until_next_due()
                except Exception:  # the database closing under us, a bug: log, back off, go on
                    if self._stopping.is_set():
                        break
                    log.exception("webhook delivery pass failed")
                    wait = 5.0
                if wait > 0:
                    self._wake.wait(wait)
                    self._wake.clear()
        finally:
            if self._client is not None:
                self._client.close()

    def deliver_due(self) -> int:
        """One pass: attempt every row due now (up to BATCH); how many were attempted."""
        rows = self.outbox.claim_due(list(self.senders), now=self._clock(), lease=LEASE, limit=BATCH)
        delivered: list[int] = []
        try:
            for index, row in enumerate(rows):
                if self._stopping.is_set():  # the rest were claimed but not tried: due at the next start
                    self.outbox.release(rows[index:], now=self._clock())
                    break
                if self._attempt(row):
                    delivered.append(row.id)
        finally:
            # One transaction for the pass (a crash before it: those are sent again, at least once).
            self.outbox.delivered(*delivered)
        return len(rows)

    def _attempt(self, row: OutboxRow) -> bool:
        """One attempt; True when delivered (the caller marks it), else retried or dead."""
        sender = self.senders[row.notifier]
        result = sender.send(row.event_id, row.event_type, row.body)
        extra = {"notifier": row.notifier, "event": row.event_id, "type": row.event_type,
                 "attempt": row.attempts}  # fmt: skip
        if result.delivered:
            log.debug("webhook delivered", extra=extra)
            return True
        if result.permanent or row.attempts >= sender.max_attempts:
            self.outbox.dead(row, "webhook", result.error)
            log.error("webhook delivery given up", extra={**extra, "error": result.error})
            return False
        delay = self.backoff.delay(row.attempts)
        if result.retry_after is not None:
            delay = max(delay, min(RETRY_AFTER_CAP, result.retry_after))
        self.outbox.retry_at(row.id, self._clock() + delay, result.error)
        log.warning("webhook delivery failed; will retry", extra={**extra, "error": result.error,
                                                                  "retry_in_s": round(delay, 1)})  # fmt: skip
        return False

    def _until_next_due(self) -> float:
        due = self.outbox.next_due(list(self.senders))
        if due is None:
            return IDLE
        return min(IDLE, max(0.01, due - self._clock()))

    def _maybe_prune(self) -> None:
        now = self._clock()
        if now - self._pruned >= PRUNE_EVERY:
            self._pruned = now
            self.outbox.prune()


def _audit_id(event_id: str) -> int | None:
    """`audit-412` → 412 (the row the event comes from); None for ids of another shape."""
    number = event_id.removeprefix("audit-")
    return int(number) if number.isdigit() else None


def build_delivery(
    database: Database,
    notifiers: Sequence[WebhookNotifier],
    secret: Callable[[str | None], str | None],
    *,
    backoff: Backoff | None = None,
    clock: Callable[[], float] = time.time,
) -> WebhookDelivery:
    """A delivery for the configured webhook notifiers, sharing one HTTP client (redirects are not
    followed). `secret` looks up a `secret_env`; a variable named but unset is refused: sending
    unsigned what the receiver expects signed would only fill the dead letters."""
    client = httpx.Client(follow_redirects=False)
    senders: dict[str, WebhookSender] = {}
    for notifier in notifiers:
        key = secret(notifier.secret_env)
        if notifier.secret_env and not key:
            client.close()
            raise ValueError(f"webhook {notifier.name}: {notifier.secret_env} (its secret_env) is not set")
        senders[notifier.name] = WebhookSender(
            notifier.name, notifier.url, secret=key, events=notifier.events,
            max_attempts=notifier.max_attempts, client=client, clock=clock,
        )  # fmt: skip
    return WebhookDelivery(database, senders, client=client, backoff=backoff, clock=clock)
