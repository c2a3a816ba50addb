"""Built-in notifiers (a plugin like any other; see services/extensions/hookspecs.py).

`webhook` (config `notifiers:`): each matching event is written to a persistent outbox in the bot's
database and POSTed, signed, by one delivery thread (services/extensions/delivery.py; the event
JSON and headers in docs/events.md). The Slack messages the bot posts are not notifiers: they stay
as they are. One delivery runs per process: configuring again stops the previous one first.
"""

from __future__ import annotations

import logging
import threading

from pydantic import BaseModel

from services.extensions.context import PluginContext
from services.extensions.delivery import WebhookDelivery, build_delivery
from services.extensions.hookspecs import hookimpl
from services.extensions.model import Event
from services.settings.extensions import WebhookNotifier
from services.settings.model import Settings

log = logging.getLogger(__name__)

_guard = threading.Lock()
_delivery: WebhookDelivery | None = None


@hookimpl
def gitops_bot_configure(
    settings: Settings, plugin_settings: BaseModel | None, context: PluginContext
) -> None:
    webhooks = [n for n in settings.notifiers if isinstance(n, WebhookNotifier)]
    fresh = build_delivery(context.database, webhooks, context.secret) if webhooks else None
    _install(fresh)
    if fresh is not None:
        fresh.start()  # picks up rows a previous process left pending
        log.info("webhook notifiers ready", extra={"notifiers": sorted(fresh.senders)})


@hookimpl
def gitops_bot_notify(event: Event) -> None:
    delivery = _delivery
    if delivery is not None:
        delivery.notify(event)


@hookimpl
def gitops_bot_shutdown() -> None:
    _install(None)


def current() -> WebhookDelivery | None:
    """The running delivery, if any (for tests and diagnostics)."""
    return _delivery


def _install(delivery: WebhookDelivery | None) -> None:
    global _delivery
    with _guard:
        previous, _delivery = _delivery, delivery
    if previous is not None and not previous.stop(timeout=2.0):
        log.warning("webhook delivery still in an attempt at stop; it ends after that one")
