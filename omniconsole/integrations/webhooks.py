"""Webhooks out: what happens in the contact centre, POSTed as signed JSON to each `[[webhooks]]`
endpoint (a CRM, a shop backend). Payloads are described in docs/openapi.yaml ("webhooks").

Driven from the events log with one cursor per endpoint (store/integrations.py): each endpoint
is its own task reading `events WHERE id > cursor`, so a dead or slow endpoint only falls behind
itself; ingest never waits for it. Each event is one POST; the cursor moves only after a 2xx, so
delivery is at least once (the body's `id` and the `X-Omniconsole-Event-Id` header are the event
id, for the receiver to drop a repeat), and in the events log's order, hence in order per
conversation. A failed POST (no answer within `timeout`, a network error, any non-2xx) is tried
again after `retry_base` * 2^(n-1) seconds, capped at `retry_max`; later events wait behind it.

The payload is built when it is sent, from what the store holds then: a customer erased before
their events went out is sent as `{"id": N, "erased": true}` with no name, identities, texts or
event details.

Signing: connectors/signing.py, the one scheme for every outbound call of the product.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from connectors import signing
from omniconsole.config import WebhookSettings
from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import _
from omniconsole.store import Store
from omniconsole.store.integrations import WebhookSource

log = logging.getLogger(__name__)

EVENT_HEADER = "X-Omniconsole-Event"
EVENT_ID_HEADER = "X-Omniconsole-Event-Id"

# Events-log kinds -> the public event names of WEBHOOK_EVENTS (channel.health is split by health).
_PUBLIC = {
    "conversation.opened": "conversation.created",
    "conversation.assigned": "conversation.assigned",
    "conversation.resolved": "conversation.resolved",
    "conversation.reopened": "conversation.reopened",
    "message.received": "message.received",
    "message.sent": "message.sent",
    "message.delivery": "message.delivery",
    "message.failed": "message.delivery",
    "customer.created": "customer.created",
    "customer.updated": "customer.updated",
    "identity.added": "customer.updated",
    "customer.merged": "customer.merged",
    "customer.unmerged": "customer.unmerged",
    "customer.erased": "customer.erased",
    "survey.answered": "survey.answered",
    "channel.health": None,
}
_CHANNEL_EVENTS = {"up": "channel.up", "down": "channel.down", "degraded": "channel.down"}


#: An automation rule's "call a webhook" action: an event addressed to one endpoint by name
#: (payload `endpoint`), sent to it whatever its `events` list says, as `rule.called`.
RULE_KIND, RULE_EVENT = "rule.webhook", "rule.called"


def internal_kinds(events: tuple[str, ...]) -> tuple[str, ...]:
    """The events-log kinds that can become one of the public `events` (and the rules' calls)."""
    wanted = set(events)
    kinds = [k for k, name in _PUBLIC.items() if name in wanted]
    if wanted & {"channel.up", "channel.down"}:
        kinds.append("channel.health")
    kinds.append(RULE_KIND)
    return tuple(kinds)


def public_event(source: WebhookSource) -> str | None:
    """The public event name for one events-log entry, or None when it is not sent."""
    if source.kind == RULE_KIND:
        return RULE_EVENT
    if source.kind == "channel.health":
        return _CHANNEL_EVENTS.get(str(source.payload.get("health")))
    return _PUBLIC.get(source.kind)


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(source: WebhookSource, event: str) -> dict:
    """The JSON body for one event (docs/openapi.yaml `WebhookEvent`); an erased customer's
    carries only their id."""
    body: dict = {
        "id": source.event_id,
        "event": event,
        "occurred_at": _iso(source.at),
        "actor": source.actor or None,
        "customer": None,
        "conversation": None,
        "message": None,
        "channel": source.channel,
        "data": {},
    }
    if source.customer_id is not None:
        if source.erased:
            body["customer"] = {"id": source.customer_id, "erased": True}
        else:
            body["customer"] = {
                "id": source.customer_id,
                "erased": False,
                "name": source.customer_name,
                "identities": [{"kind": k, "address": a} for k, a in source.identities],
            }
    if source.conversation is not None:
        conversation = dict(source.conversation)
        for key in ("opened_at", "resolved_at"):
            conversation[key] = _iso(conversation[key])
        if source.erased:
            conversation["subject"] = ""
        body["conversation"] = conversation
    if source.message is not None:
        message = dict(source.message)
        message["created_at"] = _iso(message["created_at"])
        if source.erased:
            message.update(body="", subject="")
        body["message"] = message
    if not source.erased:
        body["data"] = {k: v for k, v in source.payload.items() if k != "channel_id"}
    return body


class WebhookEndpoint:
    """Delivers the events log to one `[[webhooks]]` endpoint, forever (run it as a task)."""

    def __init__(
        self,
        store: Store,
        settings: WebhookSettings,
        *,
        poll: float = 0.25,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.store = store
        self.settings = settings
        self.poll = poll
        self.kinds = internal_kinds(settings.events)
        self.wanted = set(settings.events)
        self._clock = clock
        self._sleep = sleep
        self._client: httpx.AsyncClient | None = None

    async def run(self) -> None:
        """Deliver from the endpoint's cursor on; never returns (cancel it to stop)."""
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.settings.timeout), follow_redirects=False)
        try:
            while True:
                try:
                    state = await self.store.start_webhook(self.settings.name)
                    break
                except OmniError as exc:
                    log.error("webhook %s: %s", self.settings.name, exc)
                    await self._sleep(max(1.0, self.poll))
            cursor = state.last_event_id
            while True:
                try:
                    cursor = await self._deliver_after(cursor)
                except OmniError as exc:  # a busy or full database: say so, go on
                    log.error("webhook %s: %s; trying again shortly", self.settings.name, exc)
                    await self._sleep(max(1.0, self.poll))
        finally:
            await self._client.aclose()

    async def _deliver_after(self, cursor: int) -> int:
        """Deliver one batch after `cursor`; returns the new cursor."""
        sources, last = await self.store.webhook_sources(cursor, self.kinds)
        if last == cursor:
            await self._sleep(self.poll)
            return cursor
        for source in sources:
            event = public_event(source)
            if event == RULE_EVENT:
                if source.payload.get("endpoint") != self.settings.name:
                    continue  # a rule called another endpoint
            elif event is None or event not in self.wanted:
                continue
            await self._post_until_accepted(source, event)
            await self.store.webhook_delivered(self.settings.name, source.event_id, 1)
            cursor = source.event_id
        if last != cursor:
            await self.store.webhook_delivered(self.settings.name, last, 0)  # nothing subscribed in between
        return last

    async def _post_until_accepted(self, source: WebhookSource, event: str) -> None:
        body = json.dumps(payload(source, event), ensure_ascii=False).encode("utf-8")
        attempt = 0
        while True:
            attempt += 1
            problem = await self._post(body, source.event_id, event)
            if problem is None:
                return
            delay = min(self.settings.retry_base * 2 ** (attempt - 1), self.settings.retry_max)
            log.warning("webhook %s: event %d: %s; trying again in %.0f s", self.settings.name, source.event_id, problem, delay)
            await self.store.webhook_failed(self.settings.name, f"event {source.event_id}: {problem}", self._clock() + delay)
            await self._sleep(delay)

    async def _post(self, body: bytes, event_id: int, event: str) -> str | None:
        """POST one signed event; None when accepted (2xx), else why not, in words."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "omniconsole",
            EVENT_HEADER: event,
            EVENT_ID_HEADER: str(event_id),
            **signing.signed_headers(self.settings.secret, body, self._clock()),
        }
        where = _origin(self.settings.url)
        try:
            response = await self._client.post(self.settings.url, content=body, headers=headers)
        except httpx.TimeoutException:
            return f"{where} did not answer within {self.settings.timeout:g} s"
        except httpx.HTTPError as exc:
            return f"{where} is unreachable: {type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"{where} answered HTTP {response.status_code}"


def _origin(url: str) -> str:
    """scheme://host:port of a URL: what logs and the status show (never a token in its path)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def core_services(settings, store: Store) -> list[Callable[[], Awaitable[None]]]:
    """What the core runs for the integrations while it holds the lease: one delivery task per
    `[[webhooks]]` endpoint."""
    return [WebhookEndpoint(store, webhook).run for webhook in settings.webhooks]


def _state_words(state, backlog: int) -> str:
    """An endpoint's state in the current language (issue #24): counts, then the failure."""
    if state is None:
        return _("not started yet (the core starts it)")
    words = _("{delivered} delivered, {waiting} waiting").format(delivered=state.delivered, waiting=backlog)
    if state.failures:
        words += _(", failing ({n} attempts in a row): {error}").format(n=state.failures, error=state.last_error)
    return words


def describe_states(settings, hooks) -> list[str]:
    """`omniconsole stats` lines for the configured endpoints and their states."""
    if not settings.webhooks and not hooks:
        return []
    known = {state.endpoint: (state, backlog) for state, backlog in hooks}
    lines = [_("webhooks:")]
    for webhook in settings.webhooks:
        state, backlog = known.get(webhook.name, (None, 0))
        lines.append(f"  {webhook.name:<24} {_origin(webhook.url):<32} {_state_words(state, backlog)}")
    return lines


async def doctor_lines(settings) -> list[tuple[bool, str]]:
    """`omniconsole doctor` verdicts, one per endpoint: failing deliveries are a FAIL. Nothing
    is posted (a probe would be an event the CRM has to ignore)."""
    try:
        store = await Store.open(settings.database, create=False)
        try:
            hooks = {state.endpoint: (state, backlog) for state, backlog in await store.webhook_states()}
        finally:
            await store.close()
    except OmniError as exc:
        return [(False, _("webhooks: {error}").format(error=error_text(exc)))]
    result = []
    for webhook in settings.webhooks:
        state, backlog = hooks.get(webhook.name, (None, 0))
        ok = state is None or not state.failures
        line = _("webhook {name} ({origin}): {state}").format(
            name=webhook.name, origin=_origin(webhook.url), state=_state_words(state, backlog)
        )
        result.append((ok, line))
    return result
