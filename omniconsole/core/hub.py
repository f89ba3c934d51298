"""The core: one per database. It holds the lease, runs every configured channel as a
supervised task, and sends the outbox.

    hub = Hub(settings, store)
    await hub.run()          # waits for the lease, then works until cancelled

Channel health is kept in the `channels` table (up / degraded / down + a reason in words), so
every operator's window shows it without talking to the core.

`Hub(settings, store, extensions=[...])` takes the capability packages' `CoreExtension`s
(core/scheduler.py): their pipeline steps run after each batch a channel delivered (never for
imports), the one scheduler fires their schedule rows, and their background tasks run while
the lease is held.

Past 600 lines for now: channel supervision, the outbox, the pipeline and four kinds of capability
hooks meet here; the hooks are to become one `CoreExtension` type, and the outbox its own module.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from connectors import connector_class
from connectors.base import (
    Button,
    ChannelContext,
    Connector,
    ConnectorError,
    DeliveryReceipt,
    DeliveryUpdate,
    InboundMessage,
    OutboundMessage,
    PermanentError,
    TransientError,
    WebRoute,
    numbered_buttons,
    raise_if_cancelled,
)
from omniconsole.config import ChannelSettings, Settings
from omniconsole.core import snooze
from omniconsole.core.ingest import Ingestor
from omniconsole.core.listener import Listener, ListenerError, channel_prefix
from omniconsole.core.scheduler import CoreExtension, Scheduler, run_pipeline
from omniconsole.errors import OmniError
from omniconsole.i18n import N_
from omniconsole.models import DeliveryState, Health, IdentityKind
from omniconsole.store import OutboxItem, Store
from omniconsole.store.outbox import json_object as _json_object

log = logging.getLogger(__name__)


class CoreService(Protocol):
    """Work a capability package runs inside the core while it holds the lease (surveys):
    `run()` until cancelled, and `routes()` served on the listener under `path`."""

    path: str

    def routes(self) -> list[WebRoute]: ...

    async def run(self) -> None: ...


ConnectorFactory = Callable[[ChannelSettings, ChannelContext], Connector]


@dataclass(frozen=True, slots=True)
class CustomerMessage:
    """One customer message just stored, as the conversation pipeline gets it: the channel's
    message and our ids for it (message, conversation, customer)."""

    message: InboundMessage
    message_id: int
    conversation_id: int
    customer_id: int


class PipelineStep(Protocol):
    """A step of the conversation pipeline (DESIGN.md: bot -> rules -> routing -> SLA), run
    after ingest commits a batch, for its new customer messages in order. A step's failure is
    logged and never loses or holds up the messages (they are stored already)."""

    name: str

    async def on_customer_messages(self, channel: ChannelSettings, messages: Sequence[CustomerMessage]) -> None: ...


# Messages that are not a customer's words to answer: kept, but no step sees them.
_NOT_CUSTOMER_MESSAGES = frozenset({"auto_reply", "reaction", "bounce"})


def default_connector_factory(channel: ChannelSettings, context: ChannelContext) -> Connector:
    """Build the connector class registered for the channel's kind."""
    return connector_class(channel.kind)(context)


class LeaseLost(OmniError):
    """Another core took this database over (we stalled past the lease's expiry)."""


@dataclass
class HubTiming:
    """How the core paces itself; tests shorten these."""

    lease_ttl: float = 6.0  # a dead core is replaced within this (plus one poll)
    lease_poll: float = 1.0  # how often a waiting core tries for the lease
    outbox_poll: float = 0.15  # how often the outbox looks for new replies
    restart_initial: float = 1.0  # first backoff after a transient channel failure
    restart_max: float = 60.0
    down_retry: float = 300.0  # a channel that failed permanently is tried again after this
    send_retry_base: float = 2.0  # outbound backoff: base * 2^(attempt-1), capped
    send_retry_max: float = 300.0
    send_max_attempts: int = 10
    send_timeout: float = 120.0
    housekeeping: float = 30.0  # backfill figures, retention, checkpoint the WAL
    retention: float = 3600.0  # how often `[retention]` is applied (the first time at start)
    listener_shutdown: float = 3.0  # how long a stop waits for webhooks in flight
    typing_poll: float = 1.0  # how often channels that show "operator is typing" are told


class ChannelSink:
    """The `InboundSink` the core gives one channel's connector."""

    def __init__(self, hub: Hub, channel_id: int, kind: str, name: str, cursor: str | None):
        self._hub = hub
        self.channel_id = channel_id
        self.kind = kind
        self.name = name
        self._cursor = cursor
        self.delivered = 0
        self.healthy = False

    @property
    def cursor(self) -> str | None:
        return self._cursor

    async def deliver(self, messages: Sequence[InboundMessage], cursor: str | None) -> list[DeliveryReceipt]:
        result = await self._hub.ingestor.ingest(self.channel_id, self.kind, messages, cursor)
        if cursor is not None:
            self._cursor = cursor
        self.delivered += len(result.stored)
        if not self.healthy:
            self.connected()
        if result.stored or result.edited:
            log.debug("%s: stored %d, duplicates %d, edited %d", self.name, len(result.stored), result.duplicates, result.edited)
        receipts = [DeliveryReceipt(*receipt) for receipt in result.receipts]
        # The conversation pipeline, in DESIGN's order: the bot's steps, then the capability
        # extensions' (routing). Imports and the demo's backfill store history without passing here,
        # and so do blocked senders' messages (kept in Spam: no bot, routing or survey).
        await self._hub.run_pipeline(self.name, messages, [r for r in receipts if r.conversation_id not in result.spam])
        if result.stored and self._hub.extensions:
            await run_pipeline(self._hub.store, self._hub.extensions, result.conversations - result.spam)
        # Our ids for what was stored, for a channel that answers its sender with them.
        return receipts

    async def delivery_updates(self, updates: Sequence[DeliveryUpdate]) -> None:
        await self._hub.store.apply_delivery_updates(
            self.channel_id, [(u.external_id, DeliveryState(u.state), u.error) for u in updates]
        )

    def connected(self, detail: str = "") -> None:
        self.healthy = True
        self._hub.report_health(self.channel_id, Health.UP, detail)

    async def set_customer_attribute(self, customer_id: int, key: str, value: str | None) -> None:
        """Set (None: remove) one attribute on a customer's card for the channel, recorded
        with the channel as the actor (an SMS opt-out). Follows merges; StoreError when the
        customer was erased."""
        store = self._hub.store
        customer_id = await store.live_customer(customer_id)
        profile = await store.customer_profile(customer_id)
        if profile is None:
            return
        attributes = {k: str(v) for k, v in profile.attributes.items()}
        if value is None:
            attributes.pop(key, None)
        else:
            attributes[key] = value
        await store.update_customer(customer_id, f"channel {self.name}", attributes=attributes)

    async def start_conversation(self, **request) -> dict:
        """Start a conversation for the open API channel (`POST /outbound`): the fields of
        `core.outbound.OutboundRequest`; returns our ids and the state, or {"error": words}."""
        from omniconsole.core.outbound import OutboundRequest, SendRefused, start_conversation

        try:
            started = await start_conversation(
                self._hub.store, self._hub.settings, OutboundRequest(**request, author=f"api {self.name}")
            )
        except SendRefused as exc:
            return {"error": str(exc)}
        return _started_fields(started)

    async def outbound_state(self, *, message_id: int | None = None, idempotency_key: str | None = None) -> dict | None:
        """The delivery state of a company-started message, by our id or its idempotency key."""
        started = await self._hub.store.started_message(message_id=message_id, idempotency_key=idempotency_key)
        return None if started is None else _started_fields(started)

    async def set_do_not_contact(self, customer_id: int, reason: str | None) -> None:
        """Mark (a reason in words) or clear (None) "do not contact" on a customer for the
        channel (an SMS opt-out word), recorded with the channel as the actor."""
        await self._hub.store.set_do_not_contact(
            customer_id, f"{reason} ({self.name})" if reason else None, f"channel {self.name}"
        )


def _started_fields(started) -> dict:
    return {
        "message_id": started.message_id,
        "conversation_id": started.conversation_id,
        "customer_id": started.customer_id,
        "state": started.state,
        "error": started.error or None,
        "duplicate": started.duplicate,
    }


class Hub:
    """Runs the connectors and the outbox of one database while holding its lease."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        timing: HubTiming | None = None,
        connector_factory: ConnectorFactory = default_connector_factory,
        services: Sequence[CoreService] = (),
        extensions: Sequence[CoreExtension] = (),
        pipeline: Sequence[PipelineStep] = (),
        jobs: Sequence[Callable[[], Awaitable[None]]] = (),
    ):
        """`pipeline`: the conversation pipeline's steps (the bot's turn); `extensions`: steps,
        schedule handlers and background tasks (routing); `services`: work with routes on the
        listener (surveys); `jobs`: long-running work that must run once per database (the
        integrations' webhook deliveries), restarted if it fails. All run while the lease is held;
        `omniconsole.capabilities.hub_parts` builds them."""
        self.settings = settings
        # Capability packages' pipeline steps, schedule handlers and background tasks
        # (core/scheduler.py); the one scheduler fires every kind they handle.
        self.extensions = list(extensions)
        self.scheduler = Scheduler(store, {**snooze.HANDLERS, **{k: h for e in self.extensions for k, h in e.handlers.items()}})
        self.jobs = tuple(jobs)
        self.store = store
        self.timing = timing or HubTiming()
        self.connector_factory = connector_factory
        self.ingestor = Ingestor(store, settings.data_dir, settings.default_region)
        self.host = socket.gethostname()
        self.me = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.connectors: dict[int, Connector] = {}
        self.channel_names: dict[int, str] = {}
        self.holding_lease = asyncio.Event()
        self._health_writes: set[asyncio.Task] = set()
        # The HTTP listener for channels that are pushed to (webhooks); None when no channel
        # has routes. Those channels start only once it listens.
        self.listener: Listener | None = None
        self.listening = asyncio.Event()
        self._web_channels: dict[int, str] = {}  # channel id -> its path prefix
        # What capability packages run in the core (surveys): each a task, its routes on the
        # listener under its `path` (a package above the core, handed in by who builds the hub).
        self.services = list(services)
        # The conversation pipeline's steps, in order (the bot first); built by whoever builds
        # the hub (the core imports no capability package).
        self.pipeline: list[PipelineStep] = list(pipeline)

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self, *, wait: bool = True) -> None:
        """Take the lease (waiting for it if `wait`), then run until cancelled.

        Returns at once without the lease when `wait` is False and another core holds it."""
        while not await self.store.try_acquire_lease(self.me, os.getpid(), self.host, self.timing.lease_ttl):
            if not wait:
                return
            await asyncio.sleep(self.timing.lease_poll)
        log.info("core %s holds the lease of %s", self.me, self.store.path)
        self.holding_lease.set()
        tasks: list[asyncio.Task] = []
        lost = False
        try:
            recovered = await self.store.recover_sending()
            if recovered:
                log.warning("requeued %d outbound messages a previous core left half-sent", recovered)
            for channel in self.settings.channels:
                channel_id = await self.store.ensure_channel(channel.channel_kind, channel.name)
                self.channel_names[channel_id] = channel.name
                if not channel.enabled:
                    await self.store.set_channel_health(channel_id, Health.DOWN, "disabled in the config")
                    continue
                context = ChannelContext(
                    channel_id=channel_id,
                    name=channel.name,
                    settings=channel.options,
                    data_dir=self.settings.data_dir,
                    logger=logging.getLogger(f"connectors.{channel.kind}.{channel.name}"),
                )
                try:
                    self.connectors[channel_id] = self.connector_factory(channel, context)
                except ConnectorError as exc:
                    await self.store.set_channel_health(channel_id, Health.DOWN, exc.reason)
                    continue
                except (TypeError, ValueError, KeyError) as exc:
                    await self.store.set_channel_health(channel_id, Health.DOWN, f"bad settings: {exc}")
                    continue
                if not await self._mount_routes(channel_id, channel):
                    continue
                tasks.append(asyncio.create_task(self._supervise(channel_id, channel), name=f"channel {channel.name}"))
            for service in self.services:
                routes = service.routes()
                if routes and self.settings.listener.enabled is not False:
                    if self.listener is None:
                        self.listener = Listener(self.settings.listener, shutdown_timeout=self.timing.listener_shutdown)
                    self.listener.mount(service.path, routes, owner=type(service).__name__)
                tasks.append(asyncio.create_task(service.run(), name=type(service).__name__))
            if self.listener is not None or self.settings.listener.enabled:
                tasks.append(asyncio.create_task(self._listen(), name="listener"))
            tasks.append(asyncio.create_task(self._outbox_loop(), name="outbox"))
            tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
            tasks.append(asyncio.create_task(self.scheduler.run(), name="scheduler"))
            for extension in self.extensions:
                if extension.background is not None:
                    # Supervised as the jobs are: a background task that crashes (the SLA's or
                    # the rules' follower, the journeys table) is logged and started again.
                    background = functools.partial(extension.background, self.store, self.scheduler)
                    tasks.append(asyncio.create_task(self._run_service(background), name=extension.name))
            for number, service in enumerate(self.jobs, start=1):
                tasks.append(asyncio.create_task(self._run_service(service), name=f"job {number}"))
            typing_channels = [c for c in self.connectors.values() if type(c).operator_typing is not Connector.operator_typing]
            if typing_channels:
                tasks.append(asyncio.create_task(self._typing_loop(typing_channels), name="typing"))
            heartbeat = asyncio.create_task(self._heartbeat(), name="heartbeat")
            tasks.append(heartbeat)
            # Only the heartbeat ends on its own (the lease was lost); everything else runs
            # until we are cancelled.
            try:
                await heartbeat
            except LeaseLost:
                lost = True
                raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*self._health_writes, return_exceptions=True)
            for channel_id, connector in self.connectors.items():
                try:
                    await connector.close()
                except Exception:
                    log.exception("closing channel %s failed", self.channel_names.get(channel_id))
            self.connectors.clear()
            self.listener = None
            self._web_channels.clear()
            try:
                if not lost:
                    # Nobody runs these channels now; the next core says otherwise when it
                    # starts. (After a takeover the new core owns their health: leave it.)
                    for channel_id in self.channel_names:
                        await asyncio.shield(self.store.set_channel_health(channel_id, Health.UNKNOWN, "the core stopped"))
                    await asyncio.shield(self.store.release_lease(self.me))
            except Exception:
                log.exception("could not release the core lease")
            self.holding_lease.clear()

    # --- the HTTP listener ----------------------------------------------------------------

    async def _mount_routes(self, channel_id: int, channel: ChannelSettings) -> bool:
        """Give a channel's webhooks their place on the listener; False (and the channel shown
        as down) when it cannot have one."""
        routes = self.connectors[channel_id].web_routes()
        if not routes:
            return True
        if self.settings.listener.enabled is False:
            await self.store.set_channel_health(
                channel_id, Health.DOWN, "this channel receives webhooks but [listener] enabled = false"
            )
            return False
        if self.listener is None:
            self.listener = Listener(self.settings.listener, shutdown_timeout=self.timing.listener_shutdown)
        prefix = channel_prefix(channel.name, channel_id, channel.options.get("path"))
        try:
            self.listener.mount(prefix, routes, owner=channel.name)
        except ListenerError as exc:
            await self.store.set_channel_health(channel_id, Health.DOWN, str(exc))
            return False
        self._web_channels[channel_id] = prefix
        return True

    async def _listen(self) -> None:
        """Serve webhooks while this core holds the lease; a port in use is shown as the web
        channels' health in words and tried again later, never a crash of the core."""
        listener = self.listener or Listener(self.settings.listener, shutdown_timeout=self.timing.listener_shutdown)
        self.listener = listener
        try:
            while True:
                try:
                    await listener.start()
                    break
                except ListenerError as exc:
                    log.error("%s", exc)
                    for channel_id in self._web_channels:
                        await self._health_quietly(
                            channel_id, Health.DOWN, f"{exc}; trying again in {self.timing.down_retry:.0f} s"
                        )
                    await asyncio.sleep(self.timing.down_retry)
            for channel_id, prefix in self._web_channels.items():
                log.info("channel %s receives webhooks at %s%s", self.channel_names[channel_id], listener.url, prefix)
            self.listening.set()
            await asyncio.Event().wait()
        finally:
            self.listening.clear()
            await asyncio.shield(listener.stop())

    async def _run_service(self, service: Callable[[], Awaitable[None]]) -> None:
        """Run one capability job until cancelled; a crash is logged and it starts again."""
        while True:
            raise_if_cancelled()
            try:
                await service()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("a core service failed; restarting it in %.0f s", self.timing.restart_initial)
            await asyncio.sleep(self.timing.restart_initial)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.timing.lease_ttl / 3)
            if not await self.store.renew_lease(self.me, self.timing.lease_ttl):
                raise LeaseLost(N_("another core took over this database; this one stops its channels"))

    async def _housekeeping(self) -> None:
        retention_due = 0.0
        while True:
            try:
                # After an upgrade: the figures of existing history (store/facts.py), once.
                backfilled = await self.store.backfill_facts()
                if backfilled:
                    log.info("computed the figures of %d conversations of earlier history", backfilled)
                if time.monotonic() >= retention_due:
                    retention_due = time.monotonic() + self.timing.retention
                    await self.apply_retention()
                await self.store.checkpoint()
            except OmniError as exc:
                log.warning("housekeeping: %s", exc)
            await asyncio.sleep(self.timing.housekeeping)

    async def apply_retention(self, now: float | None = None) -> tuple[int, int]:
        """Apply `[retention]`: prune live events older than `live_days` and, when
        `messages_days` is set, erase older message texts. Returns (events pruned, texts erased)."""
        now = now or time.time()
        retention = self.settings.retention
        pruned = await self.store.prune_live_events(now - retention.live_days * 86400)
        erased = 0
        if retention.messages_days is not None:
            erased = await self.store.erase_texts_before(now - retention.messages_days * 86400)
        if pruned or erased:
            log.info("retention: %d live events pruned, %d message texts erased", pruned, erased)
        return pruned, erased

    async def _typing_loop(self, connectors: list[Connector]) -> None:
        """Tell the channels that show "operator is typing" (the web chat) which of their
        customers an operator is typing to, from the operators' presence rows."""
        while True:
            try:
                for kind in {c.identity_kind for c in connectors}:
                    addresses = await self.store.typing_addresses(str(kind))
                    for connector in connectors:
                        if connector.identity_kind == kind:
                            await connector.operator_typing(addresses)
            except OmniError as exc:
                log.warning("typing: %s", exc)
            except Exception:
                log.exception("telling channels who is typing failed")  # a nicety: never fatal
            await asyncio.sleep(self.timing.typing_poll)

    async def _health_quietly(self, channel_id: int, health: Health, detail: str) -> None:
        try:
            await self.store.set_channel_health(channel_id, health, detail)
        except OmniError as exc:
            log.error("cannot record the health of channel %s: %s", self.channel_names.get(channel_id), exc)

    def report_health(self, channel_id: int, health: Health, detail: str) -> None:
        """Record a channel's health without making the caller wait for the database."""
        task = asyncio.create_task(self.store.set_channel_health(channel_id, health, detail))
        self._health_writes.add(task)
        task.add_done_callback(self._health_writes.discard)

    # --- channels -----------------------------------------------------------------------

    async def _supervise(self, channel_id: int, channel: ChannelSettings) -> None:
        """Run one channel's receive loop forever, restarting it with capped backoff."""
        connector = self.connectors[channel_id]
        if channel_id in self._web_channels:
            await self.listening.wait()  # webhooks cannot arrive before the listener listens
        backoff = self.timing.restart_initial
        while True:
            # A channel library may lose our cancellation while it fails (aioimaplib's connect
            # to a refused port): then the restart below would run forever (connectors/base.py).
            raise_if_cancelled()
            try:
                cursor = await self.store.cursor(channel_id)
            except OmniError as exc:
                log.error("channel %s: cannot read its cursor: %s", channel.name, exc)
                await asyncio.sleep(backoff)
                continue
            sink = ChannelSink(self, channel_id, channel.channel_kind, channel.name, cursor)
            try:
                await connector.run(sink)
                raise TransientError("the connector stopped by itself")
            except asyncio.CancelledError:
                raise
            except PermanentError as exc:
                log.error("channel %s is down: %s", channel.name, exc.reason)
                await self._health_quietly(channel_id, Health.DOWN, exc.reason)
                await asyncio.sleep(self.timing.down_retry)
                continue
            except TransientError as exc:
                reason, delay = exc.reason, exc.retry_after
            except OmniError as exc:  # the store could not take the batch (disk full...)
                reason, delay = str(exc), None
            except Exception as exc:
                log.exception("channel %s failed unexpectedly", channel.name)
                reason, delay = f"unexpected error: {type(exc).__name__}: {exc}", None
            if sink.healthy or sink.delivered:
                backoff = self.timing.restart_initial  # it worked for a while: start over
            wait = delay if delay is not None else backoff
            log.warning("channel %s degraded: %s (retrying in %.0f s)", channel.name, reason, wait)
            await self._health_quietly(channel_id, Health.DEGRADED, f"{reason}; retrying in {wait:.0f} s")
            await asyncio.sleep(wait)
            backoff = min(backoff * 2, self.timing.restart_max)

    # --- the conversation pipeline -------------------------------------------------------

    async def run_pipeline(
        self, channel_name: str, messages: Sequence[InboundMessage], receipts: Sequence[DeliveryReceipt]
    ) -> None:
        """Give the batch's newly stored customer messages (not redeliveries, edits, reactions
        or auto-replies) to each pipeline step in order. Runs after the batch is durable, so a
        step that fails loses nothing: it is logged and the next step still runs."""
        if not self.pipeline:
            return
        by_id = {m.external_id: m for m in messages}
        fresh = [
            CustomerMessage(by_id[r.external_id], r.message_id, r.conversation_id, r.customer_id)
            for r in receipts
            if not r.duplicate
            and r.external_id in by_id
            and by_id[r.external_id].edited_at is None
            and not (by_id[r.external_id].flags & _NOT_CUSTOMER_MESSAGES)
        ]
        channel = next((c for c in self.settings.channels if c.name == channel_name), None)
        if not fresh or channel is None:
            return
        for step in self.pipeline:
            try:
                await step.on_customer_messages(channel, fresh)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "pipeline step %s failed on channel %s; the messages are stored", getattr(step, "name", step), channel_name
                )

    # --- outbox -------------------------------------------------------------------------

    async def _outbox_loop(self) -> None:
        # One sender per channel: a slow or unreachable channel (an integration's callback
        # that times out, a mail server that hangs) must not hold up the others' replies.
        await asyncio.gather(*(self._channel_outbox(channel_id) for channel_id in list(self.connectors)))

    async def _channel_outbox(self, channel_id: int) -> None:
        """Send one channel's queued replies, in the order they were written, forever."""
        channels = [channel_id]
        while True:
            raise_if_cancelled()  # a channel library may have lost our cancellation (connectors/base.py)
            try:
                due = await self.store.next_outbox_due(channels)
                if due is None or due > time.time():
                    await asyncio.sleep(self.timing.outbox_poll)
                    continue
                await self._send_in_order(await self.store.claim_outbox(channels, limit=20))
            except OmniError as exc:
                # A busy or full database must not end the outbox for good: say so, wait, go
                # on. (Rows claimed but not recorded stay `sending` until the next start.)
                log.error("outbox of channel %s: %s; trying again shortly", self.channel_names.get(channel_id), exc)
                await asyncio.sleep(max(1.0, self.timing.outbox_poll))

    async def _send_in_order(self, items: list[OutboxItem]) -> None:
        for item in items:
            await self.send(item)

    async def send(self, item: OutboxItem) -> None:
        """Send one claimed outbound message and record how it went."""
        connector = self.connectors[item.channel_id]
        meta = _json_object(item.meta)
        buttons = _buttons(meta.pop("buttons", None))
        body = item.body
        if buttons and not connector.draws_buttons:
            body, buttons = numbered_buttons(body, buttons), ()
        message = OutboundMessage(
            id=item.message_id,
            conversation_id=item.conversation_id,
            identity_kind=IdentityKind(item.identity_kind),
            address=item.address,
            body=body,
            subject=item.subject,
            author=item.author,
            thread_key=item.thread_key,
            reply_to_keys=item.reply_to_keys,
            reply_to_external_id=item.reply_to_external_id,
            attachments=tuple(self.settings.attachments_dir / p for p in item.attachment_paths),
            meta=meta,
            attempt=item.attempts,
            buttons=buttons,
        )
        try:
            async with asyncio.timeout(self.timing.send_timeout):
                result = await connector.send(message)
        except asyncio.CancelledError:
            raise  # left in `sending`; the next core start requeues it
        except PermanentError as exc:
            await self.store.mark_failed(item.message_id, exc.reason)
            return
        except TransientError as exc:
            await self._retry_later(item, exc.reason, exc.retry_after)
            return
        except TimeoutError:
            await self._retry_later(item, f"the channel did not answer within {self.timing.send_timeout:.0f} s", None)
            return
        except Exception as exc:
            log.exception("sending message %d failed unexpectedly", item.message_id)
            await self._retry_later(item, f"unexpected error: {type(exc).__name__}: {exc}", None)
            return
        await self.store.mark_sent(item.message_id, result.external_id, DeliveryState(result.state), result.thread_key)

    async def _retry_later(self, item: OutboxItem, reason: str, retry_after: float | None) -> None:
        if item.attempts >= self.timing.send_max_attempts:
            await self.store.mark_failed(item.message_id, f"{reason} (gave up after {item.attempts} attempts)")
            return
        delay = (
            retry_after
            if retry_after is not None
            else min(self.timing.send_retry_base * 2 ** (item.attempts - 1), self.timing.send_retry_max)
        )
        await self.store.mark_retry(item.message_id, f"{reason}; retrying", time.time() + delay)


def _buttons(value) -> tuple[Button, ...]:
    """The buttons a queued message carries in its meta (`[[id, title], ...]`, or
    `[{"id", "title"}, ...]` as surveys write them); malformed entries are left out (the
    message still goes, as text)."""
    if not isinstance(value, list):
        return ()
    buttons = []
    for entry in value:
        try:
            button_id, title = (entry["id"], entry["title"]) if isinstance(entry, dict) else entry
            buttons.append(Button(str(button_id), str(title)))
        except (TypeError, ValueError):
            log.warning("a queued message carried a malformed button %r; left out", entry)
    return tuple(buttons)
