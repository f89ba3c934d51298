"""Phone calls: a PBX posts call events to our real listener; the real Hub stores them in a real
Store. Each test reads back what an operator would see: one timeline entry per call, the
conversation waiting (or not), the screen-pop event, the customer shared with WhatsApp.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import ChannelContext, OutboundMessage, PermanentError
from connectors.telephony import TelephonyConnector
from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.core.hub import Hub
from omniconsole.models import IdentityKind, InboxView, OperatorRole
from omniconsole.store import Store, history
from omniconsole.store.calls import merge_call
from tests.rig import FAST, free_port

TOKEN = "pbx-token-31337"
IVAN = "+79991234567"


class Pbx:
    """The PBX's side: posts call events to the channel's endpoint with its token."""

    def __init__(self, url: str, token: str | None = TOKEN):
        self.url = url
        self.client = httpx.AsyncClient(timeout=10)
        self.token = token

    async def post(
        self, payload: Any = None, *, raw: bytes | None = None, token: str | None = "", **headers: str
    ) -> httpx.Response:
        token = self.token if token == "" else token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        headers.setdefault("Content-Type", "application/json")
        body = raw if raw is not None else json.dumps(payload).encode()
        return await self.client.post(self.url, content=body, headers=headers)

    async def event(self, event: str, call_id: str = "c-1", **fields: Any) -> dict[str, Any]:
        answer = await self.post({"event": event, "call_id": call_id, **fields})
        assert answer.status_code == 202, answer.text
        return answer.json()


@contextlib.asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[tuple[Store, Pbx]]:
    """A real core with one telephony channel named "Phone", and the PBX pointed at it."""
    port = free_port()
    settings = Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        default_region="RU",
        channels=[ChannelSettings("telephony", "Phone", {"token": TOKEN})],
        listener=ListenerSettings(port=port),
    )
    store = await Store.open(settings.database)
    await store.add_operator("alice", "Alice", OperatorRole.AGENT, extension="101")
    await store.add_operator("bob", "Bob", OperatorRole.AGENT, extension="102")
    hub = Hub(settings, store, timing=FAST)
    task = asyncio.create_task(hub.run())
    pbx = Pbx(f"http://127.0.0.1:{port}/hooks/phone/events")
    try:
        await asyncio.wait_for(hub.listening.wait(), 5)
        for _ in range(250):
            if all(c.health == "up" for c in await store.channels()):
                break
            await asyncio.sleep(0.02)
        yield store, pbx
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await pbx.client.aclose()
        await store.close()


async def calls_in(store: Store, conversation_id: int) -> list[dict[str, Any]]:
    return [json.loads(e.meta)["call"] for e in await store.timeline(conversation_id) if "call" in e.flags]


async def events_of(store: Store, kind: str) -> list:
    return [e for e in await store.events_since(0) if e.kind == kind]


async def test_an_answered_call_is_one_entry_for_the_whatsapp_customer_and_pops_at_the_extension(tmp_path: Path) -> None:
    async with running(tmp_path) as (store, pbx):
        ivan = await store.db.write(history.add_customer, "Иван", [("whatsapp", IVAN, "79991234567")])
        ringing = await pbx.event(
            "ringing",
            direction="in",
            **{"from": "8 (999) 123-45-67", "to": "+74951234567"},
            extension="101",
            at="2026-11-23T16:05:00Z",
        )
        assert ringing["customer_id"] == ivan and ringing["duplicate"] is False
        conversation = ringing["conversation_id"]
        [pop] = await events_of(store, "call.ringing")
        assert (pop.conversation_id, pop.customer_id) == (conversation, ivan)
        assert json.loads(pop.payload) == {"extensions": ["101"], "number": "8 (999) 123-45-67", "name": "Иван", "call_id": "c-1"}
        [row] = await store.inbox_page(InboxView.ALL)
        assert row.waiting_since is None and row.preview.startswith("📞 Incoming call from 8 (999) 123-45-67, ringing")

        answered = await pbx.event("answered", extension="101", **{"from": IVAN})
        ended = await pbx.event("ended", duration=125, recording_url="https://pbx.example.com/rec/c-1.mp3", **{"from": IVAN})
        again = await pbx.event("ended", duration=125, recording_url="https://pbx.example.com/rec/c-1.mp3", **{"from": IVAN})
        assert answered["message_id"] == ended["message_id"] == again["message_id"] == ringing["message_id"]
        assert again["duplicate"] is True

        [call] = await calls_in(store, conversation)
        assert call["outcome"] == "answered" and call["duration"] == 125 and call["answered_by"] == ["101"]
        assert call["recording_url"] == "https://pbx.example.com/rec/c-1.mp3"
        entries = await store.timeline(conversation)
        [entry] = [e for e in entries if "call" in e.flags]
        assert entry.direction == "event" and entry.channel_kind == "telephony"
        assert entry.body == "Incoming call from 8 (999) 123-45-67, answered, 2:05"
        # Answered at alice's extension: the conversation is hers, and nobody waits.
        conv = await store.conversation(conversation)
        assert conv.assignee == "alice" and conv.waiting_since is None
        assert [e.body for e in entries if e.direction == "event" and "call" not in e.flags] == ["assigned to alice"]
        profile = await store.customer_profile(ivan)
        assert {(i.kind, i.address) for i in profile.identities} == {("whatsapp", IVAN), ("phone", IVAN)}
        # The repeated event added nothing: one received, two updates.
        assert len(await events_of(store, "call.updated")) == 2
        assert len(await events_of(store, "call.ringing")) == 1
        # Calls never become the default way to answer: a phone line carries no text.
        assert all(option.channel_name != "Phone" for option in await store.reply_options(conversation))


async def test_a_missed_call_waits_in_unassigned_for_a_call_back(tmp_path: Path) -> None:
    async with running(tmp_path) as (store, pbx):
        missed = await pbx.event(
            "missed", call_id="m-1", extension=["101", "102"], name="Olga", **{"from": "+44 7700 900123"}, at=1_790_000_000
        )
        [row] = await store.inbox_page(InboxView.UNASSIGNED)
        assert row.conversation_id == missed["conversation_id"] and row.customer_name == "Olga"
        assert row.subject == "Phone call from +44 7700 900123"
        assert row.waiting_since == 1_790_000_000 and row.preview == "📞 Missed call from +44 7700 900123"
        # A late ringing (the PBX retried it) changes nothing and pops nobody.
        late = await pbx.event("ringing", call_id="m-1", extension="101", **{"from": "+44 7700 900123"})
        assert late["duplicate"] is True and await events_of(store, "call.ringing") == []
        [call] = await calls_in(store, missed["conversation_id"])
        assert call["outcome"] == "missed"
        # The phone is a channel the customer used: it is in their journey.
        assert (await store.customer_profile(missed["customer_id"])).journey == ("telephony",)

        # An inbound call that ends unanswered is missed too; the customer still waits since the first.
        await pbx.event("ringing", call_id="m-2", extension="102", **{"from": "+44 7700 900123"}, at=1_790_000_100)
        await pbx.event("ended", call_id="m-2", duration=0, **{"from": "+44 7700 900123"}, at=1_790_000_130)
        [row] = await store.inbox_page(InboxView.UNASSIGNED)
        assert row.waiting_since == 1_790_000_000
        assert [c["outcome"] for c in await calls_in(store, row.conversation_id)] == ["missed", "missed"]

        # Bob calls back and Olga answers: the call-back is the answer.
        await pbx.event("answered", call_id="o-1", direction="out", to="+447700900123", extension="102", at=1_790_000_500)
        await pbx.event("ended", call_id="o-1", direction="out", to="+447700900123", duration=61, at=1_790_000_561)
        conv = await store.conversation(row.conversation_id)
        assert conv.waiting_since is None and conv.assignee == "bob"
        assert [c["outcome"] for c in await calls_in(store, row.conversation_id)] == ["missed", "missed", "answered"]
        assert await store.inbox_page(InboxView.UNASSIGNED) == []


async def test_an_unanswered_outbound_call_leaves_nobody_waiting(tmp_path: Path) -> None:
    async with running(tmp_path) as (store, pbx):
        first = await pbx.event("ringing", call_id="o-9", direction="out", to=IVAN, extension="101")
        assert await events_of(store, "call.ringing") == []  # we are calling: nothing to pop
        await pbx.event("ended", call_id="o-9", direction="out", to=IVAN, duration=0)
        [call] = await calls_in(store, first["conversation_id"])
        assert call["outcome"] == "no answer"
        conv = await store.conversation(first["conversation_id"])
        assert conv.waiting_since is None and conv.assignee is None


async def test_events_in_any_order_end_in_the_same_call() -> None:
    events = [
        {"event": "ringing", "id": "x", "direction": "in", "from": IVAN, "extensions": ["101"], "at": 1.0},
        {"event": "answered", "id": "x", "direction": "in", "from": IVAN, "extensions": ["102"], "at": 2.0},
        {"event": "ended", "id": "x", "direction": "in", "from": IVAN, "duration": 30, "recording_url": "https://r/1", "at": 3.0},
    ]
    import itertools

    outcomes = set()
    for order in itertools.permutations(events):
        call = None
        for event in order:
            call = merge_call(call, event)
        outcomes.add((call["outcome"], call["duration"], call["recording_url"], call["answered"], call["final"]))
    assert outcomes == {("answered", 30, "https://r/1", True, True)}


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ({"event": "hangup", "call_id": "1", "from": IVAN}, 422, "event must be one of ringing, answered, ended, missed"),
        ({"call_id": "1", "from": IVAN}, 422, "event must be one of"),
        ({"event": "ringing", "from": IVAN}, 422, "call_id is required"),
        ({"event": "ringing", "call_id": "a\u0085b", "from": IVAN}, 422, "may not contain control"),
        ({"event": "ringing", "call_id": "1"}, 422, "from is required"),
        ({"event": "ringing", "call_id": "1", "direction": "out", "from": IVAN}, 422, "to is required"),
        ({"event": "ringing", "call_id": "1", "from": "anonymous"}, 422, "withheld"),
        ({"event": "ringing", "call_id": "1", "from": IVAN, "direction": "sideways"}, 422, "direction must be"),
        ({"event": "ended", "call_id": "1", "from": IVAN, "duration": -5}, 422, "duration must be"),
        ({"event": "ended", "call_id": "1", "from": IVAN, "duration": "long"}, 422, "duration must be"),
        ({"event": "ended", "call_id": "1", "from": IVAN, "recording_url": "javascript:alert(1)"}, 422, "recording_url must be"),
        (
            {"event": "ended", "call_id": "1", "from": IVAN, "recording_url": "https://x/\x1b]0;x\x07"},
            422,
            "recording_url must be",
        ),
        ({"event": "ringing", "call_id": "1", "from": IVAN, "extension": {"n": 1}}, 422, "extension must be"),
        ({"event": "ringing", "call_id": "1", "from": IVAN, "at": "when it rang"}, 422, "ISO 8601"),
        ([{"event": "ringing"}], 400, "JSON object"),
    ],
)
async def test_bad_call_events_get_a_reason_and_change_nothing(tmp_path: Path, payload: Any, status: int, words: str) -> None:
    async with running(tmp_path) as (store, pbx):
        before = await store.last_event_id()
        answer = await pbx.post(payload)
        assert answer.status_code == status and words in answer.text, answer.text
        assert await store.last_event_id() == before
        assert await store.db.run(lambda c: c.execute("SELECT count(*) FROM messages").fetchone()[0]) == 0


async def test_call_events_need_the_token(tmp_path: Path) -> None:
    async with running(tmp_path) as (store, pbx):
        before = await store.last_event_id()
        ringing = {"event": "ringing", "call_id": "1", "from": IVAN, "extension": "101"}
        assert (await pbx.post(ringing, token=None)).status_code == 401
        assert (await pbx.post(ringing, token="guess")).status_code == 403
        assert (await pbx.post(ringing, raw=b"ringing")).status_code == 400
        assert await store.last_event_id() == before
        assert (await pbx.post(ringing)).status_code == 202
        assert await store.last_event_id() > before


async def test_a_phone_line_cannot_send_text(tmp_path: Path) -> None:
    connector = TelephonyConnector(ChannelContext(1, "Phone", {"token": TOKEN}, tmp_path))
    with pytest.raises(PermanentError, match="cannot carry text"):
        await connector.send(OutboundMessage(1, 1, IdentityKind.PHONE, IVAN, "hello"))
    with pytest.raises(PermanentError, match="missing token"):
        await TelephonyConnector(ChannelContext(1, "Phone", {}, tmp_path)).check()


def test_operator_add_gives_an_extension_shown_in_the_list(tmp_path: Path) -> None:
    import getpass
    import subprocess
    import sys

    from tests.conftest import subprocess_env

    db = str(tmp_path / "ops.db")

    def omniconsole(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "omniconsole.cli", *args, "--db", db],
            capture_output=True,
            text=True,
            timeout=60,
            env=subprocess_env(),
        )

    me = getpass.getuser()
    assert omniconsole("operator", "add", me, "--admin").returncode == 0
    added = omniconsole("operator", "add", "alice", "--extension", "101")
    assert added.returncode == 0 and "extension 101" in added.stdout, added.stderr
    listing = omniconsole("operator", "list").stdout
    assert any(line.split()[:3] == ["alice", "agent", "ext"] and "101" in line for line in listing.splitlines()), listing
    taken = omniconsole("operator", "add", "bob", "--extension", "101")
    assert taken.returncode == 2 and "extension 101 already rings alice" in taken.stderr and "Traceback" not in taken.stderr
    assert omniconsole("operator", "add", "alice", "--name", "Alice A.").returncode == 0  # keeps her extension
    assert "ext 101" in omniconsole("operator", "list").stdout


class FailingOnceSink:
    """Stands in for a core whose first commit fails (disk full), then works."""

    def __init__(self) -> None:
        self.messages: list = []
        self.failures = 1
        self.up = asyncio.Event()

    @property
    def cursor(self) -> None:
        return None

    async def deliver(self, messages, cursor):
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        self.messages.extend(messages)
        return None  # a sink may give no receipts

    async def delivery_updates(self, updates) -> None:
        pass

    def connected(self, detail: str = "") -> None:
        self.up.set()


async def test_an_event_that_could_not_be_stored_gets_503_so_the_pbx_sends_it_again(tmp_path: Path) -> None:
    from omniconsole.core.listener import Listener

    connector = TelephonyConnector(ChannelContext(1, "Phone", {"token": TOKEN}, tmp_path))
    listener = Listener(ListenerSettings(port=0))
    listener.mount("/hooks/phone", connector.web_routes(), owner="Phone")
    await listener.start()
    pbx = Pbx(f"{listener.url}/hooks/phone/events")
    sink = FailingOnceSink()
    ringing = {"event": "ringing", "call_id": "1", "from": IVAN, "extension": "101"}
    try:
        assert (await pbx.post(ringing)).status_code == 503  # not running yet
        task = asyncio.create_task(connector.run(sink))
        await asyncio.wait_for(sink.up.wait(), 5)
        failed = await pbx.post(ringing)
        assert failed.status_code == 503 and "send again" in failed.text and sink.messages == []
        stored = await pbx.post(ringing)
        assert stored.status_code == 202 and stored.json() == {"status": "accepted", "call_id": "1"}
        [message] = sink.messages
        assert message.external_id == "call:1" and message.flags == {"call"} and message.address == IVAN
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await pbx.client.aclose()
        await listener.stop()


async def test_who_took_the_call_is_known_whatever_the_event_order(tmp_path: Path) -> None:
    """Ringing at 101, ended with talk time, and only then `answered` at 102: 102 took it, and
    the conversation goes to 102's operator, never to the first extension that rang."""
    async with running(tmp_path) as (store, pbx):
        number = {"from": "+44 7700 900555"}
        first = await pbx.event("ringing", call_id="o-9", extension="101", **number, at=1_790_000_000)
        await pbx.event("ended", call_id="o-9", duration=30, **number, at=1_790_000_040)
        assert (await store.conversation(first["conversation_id"])).assignee is None  # nobody said who
        await pbx.event("answered", call_id="o-9", extension="102", **number, at=1_790_000_005)
        [call] = await calls_in(store, first["conversation_id"])
        assert call["answered_by"] == ["102"] and call["outcome"] == "answered"
        assert (await store.conversation(first["conversation_id"])).assignee == "bob"


async def test_call_fields_from_the_pbx_are_stored_without_control_sequences(tmp_path: Path) -> None:
    async with running(tmp_path) as (store, pbx):
        taken = await pbx.event(
            "missed",
            call_id="x-1",
            **{"from": "+44 7700 900556"},
            name="Eve\x1b]52;c;cHduZWQ=\x07",
            note="call back \u202eplease",
            at=1_790_000_000,
        )
        [call] = await calls_in(store, taken["conversation_id"])
        assert call["note"] == "call back please"
        profile = await store.customer_profile(taken["customer_id"])
        assert (
            profile.display_name.startswith("Eve") and "\x1b" not in profile.display_name and "\x07" not in profile.display_name
        )
        refused = await pbx.post({"event": "ringing", "call_id": "x-2", "from": "+44 7700\x1b[31m 900557"})
        assert refused.status_code == 422 and "phone number" in refused.text
