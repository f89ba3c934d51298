"""The core in-process: outbox retries and failures, channel supervision and health, the lease."""

from __future__ import annotations

import asyncio
import time

import pytest

from connectors.base import Connector, OutboundMessage, PermanentError, SendResult, TransientError
from omniconsole.config import ChannelSettings, Settings
from omniconsole.core.hub import Hub, HubTiming
from omniconsole.core.identity import normalize_address, normalize_email, normalize_phone
from omniconsole.models import DeliveryState, IdentityKind, InboxView, sanitize_text
from omniconsole.store import Store
from tests.conftest import HOSTILE_TEXTS, inbound

FAST = HubTiming(
    lease_ttl=1.5,
    lease_poll=0.1,
    outbox_poll=0.02,
    restart_initial=0.05,
    restart_max=0.2,
    down_retry=0.3,
    send_retry_base=0.05,
    send_retry_max=0.2,
    send_max_attempts=4,
    housekeeping=0.2,
)


class ScriptedChannel(Connector):
    """A channel whose behaviour a test scripts: inbound batches to deliver, and what each
    send attempt does. It is a peer at the connector contract, not a mock of the core."""

    kind = "scripted"
    identity_kind = IdentityKind.TELEGRAM

    def __init__(self, context, inbound_batches=(), send_script=(), run_failures=()):
        super().__init__(context)
        self.inbound_batches = list(inbound_batches)
        self.send_script = list(send_script)
        self.run_failures = list(run_failures)
        self.sent: list[OutboundMessage] = []
        self.runs = 0

    async def run(self, sink):
        self.runs += 1
        if self.run_failures:
            raise self.run_failures.pop(0)
        sink.connected("scripted")
        while self.inbound_batches:
            batch, cursor = self.inbound_batches.pop(0)
            await sink.deliver(batch, cursor)
        await asyncio.Event().wait()

    async def send(self, message):
        self.sent.append(message)
        action = self.send_script.pop(0) if self.send_script else "ok"
        if isinstance(action, Exception):
            raise action
        return SendResult(external_id=f"out-{message.id}-{message.attempt}")


async def run_hub(tmp_path, store, connector_kwargs):
    settings = Settings(
        database=store.path, data_dir=tmp_path / "data", channels=[ChannelSettings(kind="scripted", name="chat", options={})]
    )
    made: list[ScriptedChannel] = []

    def factory(channel, context):
        made.append(ScriptedChannel(context, **connector_kwargs))
        return made[-1]

    hub = Hub(settings, store, timing=FAST, connector_factory=factory)
    task = asyncio.create_task(hub.run())
    await asyncio.wait_for(hub.holding_lease.wait(), 5)
    return hub, task, made


async def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.03)
    raise AssertionError("condition not reached in time")


async def stop(task):
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _conversation(store):
    rows = await store.inbox_page(InboxView.ALL)
    return rows[0].conversation_id if rows else None


async def test_outbox_transient_failure_then_success(tmp_path, store):
    hub, task, made = await run_hub(
        tmp_path,
        store,
        {
            "inbound_batches": [([inbound("1", "hi")], "1")],
            "send_script": [TransientError("connection reset by peer"), "ok"],
        },
    )
    try:
        conversation = await wait_until(lambda: _conversation(store))
        message_id = await store.queue_reply(conversation, "hello back", "alice")

        async def sent():
            entry = [e for e in await store.timeline(conversation) if e.id == message_id][0]
            return entry if entry.state == "sent" else None

        entry = await wait_until(sent)
        assert entry.attempts == 2 and entry.external_id == f"out-{message_id}-2" and entry.error == ""
        assert [m.attempt for m in made[0].sent] == [1, 2]
        assert made[0].sent[0].meta == {} and made[0].sent[0].address == "1001"
        kinds = [e.kind for e in await store.events_since(0) if e.message_id == message_id]
        assert kinds == ["message.queued", "message.retrying", "message.sent"]
    finally:
        await stop(task)


async def test_a_channel_that_hangs_does_not_hold_up_another_channels_replies(tmp_path, store):
    """Each channel has its own sender: replies on a channel whose sends hang (a callback that
    never answers) do not delay replies on another channel."""
    hang, hanging = asyncio.Event(), asyncio.Event()

    class Hanging(ScriptedChannel):
        async def send(self, message):
            if self.context.name == "slow":
                hanging.set()
                await hang.wait()
            return await super().send(message)

    settings = Settings(
        database=store.path,
        data_dir=tmp_path / "data",
        channels=[
            ChannelSettings(kind="scripted", name="slow", options={}),
            ChannelSettings(kind="scripted", name="fast", options={}),
        ],
    )
    made: dict[str, Hanging] = {}

    def factory(channel, context):
        address = "2001" if channel.name == "slow" else "2002"
        made[channel.name] = Hanging(context, inbound_batches=[([inbound(channel.name, "hi", address=address)], "1")])
        return made[channel.name]

    hub = Hub(settings, store, timing=FAST, connector_factory=factory)
    task = asyncio.create_task(hub.run())
    try:

        async def both():
            rows = await store.inbox_page(InboxView.ALL)
            return rows if len(rows) == 2 else None

        rows = await wait_until(both)
        by_customer = {r.conversation_id: r for r in rows}
        slow_conversation = next(c for c, r in by_customer.items() if "slow" in r.preview or r.customer_name == "2001")
        fast_conversation = next(c for c in by_customer if c != slow_conversation)
        await store.queue_reply(slow_conversation, "reply", "alice")
        await asyncio.wait_for(hanging.wait(), 5)  # the slow channel's send has started and hangs
        await store.queue_reply(fast_conversation, "reply", "alice")

        async def fast_sent():
            return made["fast"].sent or None

        await wait_until(fast_sent, timeout=5)
        assert made["slow"].sent == []  # still hanging, and it held nobody up
    finally:
        hang.set()
        await stop(task)


async def test_outbox_permanent_failure_keeps_reason_and_can_be_retried(tmp_path, store):
    hub, task, made = await run_hub(
        tmp_path,
        store,
        {
            "inbound_batches": [([inbound("1", "hi")], "1")],
            "send_script": [PermanentError("the customer blocked the bot"), "ok"],
        },
    )
    try:
        conversation = await wait_until(lambda: _conversation(store))
        message_id = await store.queue_reply(conversation, "hello", "alice")

        async def state(wanted):
            entry = [e for e in await store.timeline(conversation) if e.id == message_id][0]
            return entry if entry.state == wanted else None

        failed = await wait_until(lambda: state("failed"))
        assert failed.error == "the customer blocked the bot" and failed.attempts == 1
        assert await store.retry_failed(message_id, "alice")
        await wait_until(lambda: state("sent"))
    finally:
        await stop(task)


async def test_outbox_gives_up_after_max_attempts(tmp_path, store):
    hub, task, made = await run_hub(
        tmp_path,
        store,
        {
            "inbound_batches": [([inbound("1", "hi")], "1")],
            "send_script": [TransientError("server said 502")] * 10,
        },
    )
    try:
        conversation = await wait_until(lambda: _conversation(store))
        message_id = await store.queue_reply(conversation, "hello", "alice")

        async def failed():
            entry = [e for e in await store.timeline(conversation) if e.id == message_id][0]
            return entry if entry.state == "failed" else None

        entry = await wait_until(failed)
        assert entry.error == "server said 502 (gave up after 4 attempts)"
    finally:
        await stop(task)


async def test_channel_restarts_after_transient_failure_and_reports_health(tmp_path, store):
    hub, task, made = await run_hub(
        tmp_path,
        store,
        {
            "run_failures": [TransientError("network is unreachable")],
            "inbound_batches": [([inbound("1", "hi")], "7")],
        },
    )
    try:

        async def up():
            channels = await store.channels()  # empty until the hub has registered it
            return channels[0] if channels and channels[0].health == "up" else None

        channel = await wait_until(up)
        assert made[0].runs == 2
        assert await store.cursor(channel.id) == "7"
        health = [e.payload for e in await store.events_since(0) if e.kind == "channel.health"]
        assert any("network is unreachable" in p for p in health)
    finally:
        await stop(task)


async def test_permanent_channel_failure_shows_down_with_reason(tmp_path, store):
    hub, task, made = await run_hub(tmp_path, store, {"run_failures": [PermanentError("the bot token was rejected")] * 50})
    try:

        async def down():
            channels = await store.channels()
            return channels[0] if channels and channels[0].health == "down" else None

        channel = await wait_until(down)
        assert channel.health_detail == "the bot token was rejected"
    finally:
        await stop(task)


async def test_sending_rows_left_by_a_crash_are_requeued(tmp_path, store):
    hub, task, made = await run_hub(tmp_path, store, {"inbound_batches": [([inbound("1", "hi")], "1")]})
    conversation = await wait_until(lambda: _conversation(store))
    await stop(task)
    message_id = await store.queue_reply(conversation, "half sent", "alice")
    claimed = await store.claim_outbox([1])  # as a core does just before it dies
    assert [i.message_id for i in claimed] == [message_id]
    hub, task, made = await run_hub(tmp_path, store, {})
    try:

        async def sent():
            entry = [e for e in await store.timeline(conversation) if e.id == message_id][0]
            return entry.state == DeliveryState.SENT

        await wait_until(sent)
    finally:
        await stop(task)


async def test_second_hub_waits_for_the_lease(tmp_path, store):
    hub, task, _ = await run_hub(tmp_path, store, {})
    other_store = await Store.open(store.path)
    second = Hub(hub.settings, other_store, timing=FAST, connector_factory=lambda c, ctx: ScriptedChannel(ctx))
    waiting = asyncio.create_task(second.run())
    try:
        await asyncio.sleep(0.5)
        assert not second.holding_lease.is_set()
        await stop(task)  # a clean stop releases the lease at once
        await asyncio.wait_for(second.holding_lease.wait(), 3)
        assert (await other_store.lease_holder()).holder == second.me
    finally:
        await stop(waiting)
        await other_store.close()


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("8 (999) 123-45-67", "+79991234567"),
        ("+7 999 1234567", "+79991234567"),
        ("89991234567", "+79991234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("not a phone", "not a phone"),
    ],
)
def test_phone_normalisation(raw, expected):
    assert normalize_phone(raw, "RU") == expected


def test_identity_normalisation():
    assert normalize_email("Ivan.Petrov@Пример.РФ") == "ivan.petrov@xn--e1afmkfd.xn--p1ai"
    assert normalize_email(" <Support@Example.COM> ") == "support@example.com"
    assert normalize_address(IdentityKind.WHATSAPP, "79991234567") == "+79991234567"
    assert normalize_address(IdentityKind.PHONE, "8 999 123 45 67") == normalize_address(IdentityKind.WHATSAPP, "79991234567")
    assert normalize_address(IdentityKind.TELEGRAM, " 42 ") == "42"


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_sanitize_removes_every_control_sequence(text):
    clean = sanitize_text(text)
    assert not any(ord(ch) < 32 and ch not in "\t\n" for ch in clean)
    assert not any(0x7F <= ord(ch) <= 0x9F for ch in clean)
    assert "52;c" not in clean and "pwned title" not in clean


def test_sanitize_keeps_ordinary_text():
    assert sanitize_text("Привет,\r\nмир\tи emoji 👍 [b]x[/b]") == "Привет,\nмир\tи emoji 👍 [b]x[/b]"


async def test_the_running_core_prunes_old_live_events_and_keeps_history(tmp_path, store):
    from omniconsole.config import RetentionSettings
    from omniconsole.store import events

    old = time.time() - 40 * 86400
    for kind in ("message.received", "conversation.read", "conversation.assigned", "customer.erased"):
        await store.db.write(events.add_event, kind, at=old)
    settings = Settings(database=store.path, data_dir=tmp_path / "data", retention=RetentionSettings(live_days=30))
    hub = Hub(settings, store, timing=FAST, connector_factory=lambda channel, context: None)
    task = asyncio.create_task(hub.run())
    try:

        async def pruned():
            kinds = [e.kind for e in await store.events_since(0)]
            return "message.received" not in kinds and kinds

        kinds = await wait_until(pruned)
    finally:
        await stop(task)
    assert [k for k in kinds if k in ("conversation.read", "conversation.assigned", "customer.erased")] == [
        "conversation.assigned",
        "customer.erased",
    ]


class CancelledWhileSending(ScriptedChannel):
    """A send that completes in the same turn of the loop as the outbox is cancelled (the core
    stopping just as a reply goes out): Python 3.11's `asyncio.wait_for` returned the result
    and dropped the cancellation there, so the sender kept polling and the core never stopped."""

    async def send(self, message):
        for task in asyncio.all_tasks():
            if "_channel_outbox" in getattr(task.get_coro(), "__qualname__", ""):
                task.cancel()
        return await super().send(message)


async def test_a_sender_cancelled_as_its_send_completes_stops(tmp_path, store):
    settings = Settings(
        database=store.path, data_dir=tmp_path / "data", channels=[ChannelSettings(kind="scripted", name="chat", options={})]
    )
    hub = Hub(
        settings,
        store,
        timing=FAST,
        connector_factory=lambda channel, context: CancelledWhileSending(context, inbound_batches=[([inbound("1", "hi")], "1")]),
    )
    task = asyncio.create_task(hub.run())
    try:
        conversation = await wait_until(lambda: _conversation(store))
        await store.queue_reply(conversation, "hello back", "alice")

        async def sender_stopped():
            return not [t for t in asyncio.all_tasks() if "_channel_outbox" in getattr(t.get_coro(), "__qualname__", "")]

        await wait_until(sender_stopped, timeout=3)
    finally:
        task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)


async def test_the_scheduler_stops_when_cancelled_as_it_is_woken(store):
    """The same race in the scheduler's sleep: woken and cancelled in one turn of the loop."""
    from omniconsole.core.scheduler import Scheduler

    scheduler = Scheduler(store, {"test.kind": lambda conn, row, now: None}, max_sleep=5)
    task = asyncio.create_task(scheduler.run())
    for _ in range(20):
        await asyncio.sleep(0.01)
        scheduler.poke()
        task.cancel()
        await asyncio.sleep(0)
        if task.done():
            break
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 2)
    assert task.cancelled()


def test_no_asyncio_wait_for_in_long_running_code():
    """`asyncio.timeout()` instead: see CancelledWhileSending above."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("omniconsole", "connectors")
        for path in (root / folder).rglob("*.py")
        if "asyncio.wait_for(" in path.read_text()
    ]
    assert offenders == []


async def test_a_snooze_ends_from_the_one_schedule_once_across_a_restart(tmp_path, store):
    """Snoozing puts a `snooze.end` row; the core's scheduler reopens the conversation at its
    time (no housekeeping poll), once, even when the core was down at that moment."""
    from omniconsole.models import ConversationStatus
    from omniconsole.store import schedule

    hub, task, _ = await run_hub(tmp_path, store, {"inbound_batches": [([inbound("1", "hi")], "1")]})
    conversation = await wait_until(lambda: _conversation(store))
    await stop(task)
    await store.set_status(conversation, ConversationStatus.SNOOZED, "alice", snoozed_until=time.time() + 0.5)
    rows = await store.db.run(schedule.scheduled)
    assert [(r.kind, r.conversation_id) for r in rows] == [("snooze.end", conversation)]
    await asyncio.sleep(0.6)  # its time passes while no core runs
    hub, task, _ = await run_hub(tmp_path, store, {})
    try:

        async def awake():
            return (await store.conversation(conversation)).status == "open"

        await wait_until(awake, timeout=5)
        await asyncio.sleep(0.3)
        woke = [e for e in await store.events_since(0) if e.kind == "conversation.woke"]
        assert [e.conversation_id for e in woke] == [conversation]
        assert await store.db.run(schedule.scheduled) == []
    finally:
        await stop(task)


async def test_a_snooze_cut_short_by_a_reply_leaves_no_row_behind(store):
    from omniconsole.models import ConversationStatus
    from omniconsole.store import schedule
    from omniconsole.store.history import InboundRecord

    channel = await store.ensure_channel("telegram", "tg")
    await store.ingest(channel, "telegram", [InboundRecord("m1", "telegram", "1001", "hi", time.time())], None)
    conversation = await _conversation(store)
    await store.set_status(conversation, ConversationStatus.SNOOZED, "alice", snoozed_until=time.time() + 3600)
    await store.set_status(conversation, ConversationStatus.RESOLVED, "alice")
    assert await store.db.run(schedule.scheduled) == []


async def test_a_loop_whose_library_lost_the_cancellation_still_stops():
    """`raise_if_cancelled()` at the top of a loop: a library that swallows a CancelledError
    (aioimaplib's `asyncio.wait_for` on Python 3.11 can) no longer keeps the loop running."""
    from connectors.base import raise_if_cancelled

    async def channel_loop(check: bool) -> str:
        for _ in range(30):  # bounded here; a channel's loop runs until cancelled
            if check:
                raise_if_cancelled()
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                pass  # the library's bug: the cancellation is lost
        return "ran on"

    careless = asyncio.create_task(channel_loop(False))
    careful = asyncio.create_task(channel_loop(True))
    await asyncio.sleep(0.03)
    careless.cancel()
    careful.cancel()
    results = await asyncio.gather(careless, careful, return_exceptions=True)
    assert results[0] == "ran on"  # without the check the cancellation is simply gone
    assert isinstance(results[1], asyncio.CancelledError) and careful.cancelled()


def test_every_channel_loop_checks_for_a_lost_cancellation():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for name in ("connectors/email.py", "connectors/telegram.py", "connectors/vk/connector.py", "connectors/mail/imap.py"):
        text = (root / name).read_text()
        assert text.count("while True:") <= text.count("raise_if_cancelled()"), name


def test_no_textual_handler_calls_its_parents_handler():
    """Textual calls the handler of every class in the MRO itself (`_get_dispatch_methods`):
    a subclass's `on_mount` that also calls `super().on_mount()` runs the parent's twice (the
    window benchmark's probe opened two main screens that way and timed both). Handlers that
    must run the parent's first stop the event instead; key handlers that pass a key on to
    TextArea (`_on_key`) are the one exception: TextArea stops what it takes."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in (root / "omniconsole").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            called = node.func
            if (
                isinstance(called.value, ast.Call)
                and isinstance(called.value.func, ast.Name)
                and called.value.func.id == "super"
                and called.attr.lstrip("_").startswith("on_")
                and called.attr not in ("on_event", "_on_key")
            ):
                offenders.append(f"{path.relative_to(root)}:{node.lineno} super().{called.attr}()")
    assert offenders == []


class LosesCancellationWhileFailing(ScriptedChannel):
    """A channel library that swallows the core's cancellation while it fails to connect (as
    aioimaplib's internal `asyncio.wait_for` can on Python 3.11) and reports a refused port."""

    async def run(self, sink):
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            pass  # lost, as the library loses it
        raise TransientError("127.0.0.1:9 refused the connection")


async def test_the_core_stops_when_a_failing_channel_loses_its_cancellation(tmp_path, store):
    """The restart loop of a channel checks for a cancellation each round: a core whose mail
    channel's server refused the connection kept retrying after it was told to stop, and the
    test waiting for it to stop hung (seen under load in CI)."""
    settings = Settings(
        database=store.path, data_dir=tmp_path / "data", channels=[ChannelSettings(kind="scripted", name="mail", options={})]
    )
    hub = Hub(settings, store, timing=FAST, connector_factory=lambda channel, context: LosesCancellationWhileFailing(context))
    task = asyncio.create_task(hub.run())
    await asyncio.sleep(0.3)  # a few failed rounds
    task.cancel()
    async with asyncio.timeout(5):
        await asyncio.gather(task, return_exceptions=True)
    assert task.done()


async def test_a_capability_background_task_that_crashes_is_started_again(tmp_path, store, caplog):
    """An extension's background task (the SLA's or the rules' follower, the journeys table)
    that raises is logged and started again, as the jobs are; before, it died for good while
    the core ran on without it."""
    from omniconsole.core.scheduler import CoreExtension

    rounds: list[int] = []

    async def background(store, scheduler):
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("a bug in the first round")
        await asyncio.sleep(3600)

    settings = Settings(database=store.path, data_dir=tmp_path / "data")
    hub = Hub(settings, store, timing=FAST, extensions=[CoreExtension("flaky", background=background)])
    task = asyncio.create_task(hub.run())
    try:

        async def restarted():
            return len(rounds) >= 2

        await wait_until(restarted, timeout=5)
        assert any("a core service failed" in r.getMessage() for r in caplog.records)
    finally:
        await stop(task)
