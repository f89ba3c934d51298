"""The store's, the core's and the capability packages' words in the operator's language
(issue #24): errors keep their template and values across the core's socket, timeline lines
keep English in `body` and their phrase in `meta`, routing, SLA, rules, macros and the journey
advice are drawn translated. English stays as it was."""

from __future__ import annotations

import asyncio
import json

import pytest

from omniconsole import i18n
from omniconsole.automation.macros import run_macro
from omniconsole.automation.rules import Action, parse_rulebook
from omniconsole.core import frames
from omniconsole.core.control import ControlServer
from omniconsole.core.ingest import Ingestor
from omniconsole.core.remote import RemoteStore
from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import english, phrase, render, word
from omniconsole.models import ConversationStatus, OperatorRole
from omniconsole.store import ActionError, access
from omniconsole.store.actions import OpenElsewhere
from tests.conftest import inbound


@pytest.fixture
def russian():
    i18n.set_language("ru")
    try:
        yield
    finally:
        i18n.set_language("en")


async def _conversation(store, external_id: str = "x1", address: str = "1001") -> int:
    channel = await store.ensure_channel("telegram", "tg")
    await Ingestor(store, store.path.parent, "RU").ingest(
        channel, "telegram", [inbound(external_id, "hi", address=address)], None
    )
    return (await store.db.run(lambda c: c.execute("SELECT max(id) FROM conversations").fetchone()))[0]


async def _event_rows(store, conversation_id: int) -> list[tuple[str, dict | None]]:
    rows = await store.db.run(
        lambda c: c.execute(
            "SELECT body, meta FROM messages WHERE conversation_id = ? AND direction = 'event' ORDER BY id", (conversation_id,)
        ).fetchall()
    )
    return [(body, json.loads(meta)["line"] if meta else None) for body, meta in rows]


# --- phrases ----------------------------------------------------------------------------------


def test_a_phrase_is_english_data_and_is_drawn_in_the_current_language(russian):
    line = phrase("{actor} unblocked this customer: back as {status}", actor="ann", status=word("conversation status", "pending"))
    assert english(line) == "ann unblocked this customer: back as pending"
    assert render(line) == "ann разблокировал(а) клиента: разговор снова ждёт клиента"
    # Through JSON (the messages.meta column, the core's socket) it is the same.
    assert render(json.loads(json.dumps(line))) == render(line)
    # A template the catalog does not know is drawn as it is; a plain value stays a value.
    assert render(phrase("{x} and {y}", x="a", y=phrase("assigned to {login}", login="bob"))) == "a and назначил(а) на bob"
    assert render("plain") == "plain" and render(7) == "7"


def test_a_phrase_never_expands_a_value_or_runs_a_format_spec(russian):
    hostile = "{actor} {0} {x.__class__} {y:>99999}"
    line = phrase("{actor} renamed the subject to «{subject}»", actor="[b]ann", subject=hostile)
    assert english(line) == f"[b]ann renamed the subject to «{hostile}»"
    assert render(line) == f"[b]ann сменил(а) тему на «{hostile}»"
    # A peer's template with a format spec or an attribute is drawn literally, never run.
    assert render({"t": "{v:>99999}{v.__class__}", "p": {"v": "x"}}) == "{v:>99999}{v.__class__}"
    with pytest.raises(KeyError):
        phrase("{missing}")


def test_a_translation_that_lost_a_field_falls_back_to_english(russian, monkeypatch):
    monkeypatch.setattr(i18n, "_", lambda message: "без поля {nope}")
    assert render(phrase("assigned to {login}", login="bob")) == "assigned to bob"
    error = ActionError("conversation {id} does not exist", id=5)
    assert error.translated() == "conversation 5 does not exist"


# --- errors across the core's socket -------------------------------------------------------


async def test_an_error_of_the_core_reaches_a_russian_window_translated(store, tmp_path, russian):
    """The core answers with the English line and its template and values; the window's
    RemoteStore rebuilds the same class, and error_text gives the window's language."""
    cid = await _conversation(store)
    await store.add_operator("ann", "Ann", OperatorRole.AGENT)
    path = tmp_path / "core.sock"
    async with ControlServer(store, path, group=None):
        # What the core sends: English line, template and values (read off the wire).
        reader, writer = await asyncio.open_unix_connection(str(path))
        try:
            args = frames.encode([999_999, ConversationStatus.RESOLVED, "x"])
            writer.write(frames.pack({"id": 1, "call": "set_status", "args": args, "kwargs": frames.encode({})}))
            await writer.drain()
            async with asyncio.timeout(10):
                answer = await frames.read_frame(reader)
        finally:
            writer.close()
        assert answer["error"] == {
            "type": "ActionError",
            "message": "conversation 999999 does not exist",
            "template": "conversation {id} does not exist",
            "params": {"id": 999_999},
        }
        remote = await RemoteStore.connect(path)
        try:
            with pytest.raises(ActionError) as caught:
                await remote.set_status(999_999, ConversationStatus.RESOLVED, "x")
            assert str(caught.value) == "conversation 999999 does not exist"
            assert error_text(caught.value) == "разговора 999999 нет"
            # A second open conversation: the refusal keeps its class and the conversation's id.
            other = await _conversation(store, "y1", address="1001")
            await store.set_status(cid, ConversationStatus.RESOLVED, "ann")
            other = await _conversation(store, "y2", address="1001")
            with pytest.raises(OpenElsewhere) as refused:
                await remote.set_status(cid, ConversationStatus.OPEN, "x")
            assert refused.value.conversation_id == other
            assert error_text(refused.value) == f"у клиента уже есть открытый разговор (#{other}); продолжайте там"
        finally:
            await remote.close()
    # A refused role names the role in the window's words (a word inside the template).
    async with ControlServer(store, path, group=None, logins=lambda uid: "ann"):
        remote = await RemoteStore.connect(path)
        try:
            with pytest.raises(access.RoleRefused) as role:
                await remote.add_operator("eve", "Eve", OperatorRole.AGENT)
            assert str(role.value) == "only an admin may do that (add_operator), and ann is agent"
            assert error_text(role.value) == "это (add_operator) может только администратор, а ann — оператор"
        finally:
            await remote.close()


async def test_an_older_core_without_templates_still_says_its_words(tmp_path, russian):
    """A core that sends only `type` and `message` (before #24): the window shows its line."""
    path = tmp_path / "old.sock"

    async def old_core(reader, writer):
        request = await frames.read_frame(reader)
        writer.write(frames.pack({"id": request["id"], "error": {"type": "ActionError", "message": "bob is not an operator"}}))
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_unix_server(old_core, path=str(path))
    try:
        remote = await RemoteStore.connect(path)
        try:
            with pytest.raises(ActionError) as caught:
                await remote.assign(1, "bob", "x")
            assert str(caught.value) == error_text(caught.value) == "bob is not an operator"
        finally:
            await remote.close()
    finally:
        server.close()
        await server.wait_closed()


def test_a_rebuilt_error_keeps_the_senders_english_line_when_its_template_does_not_match(russian):
    """Template and values are used only when they give back the line the core sent."""
    error = ActionError.rebuilt("the words", "a {field} without its value", {})
    assert str(error) == "the words" and error_text(error) == "the words"
    error = ActionError.rebuilt("other words", "conversation {id} does not exist", {"id": 3})
    assert str(error) == error_text(error) == "other words"
    error = OmniError.rebuilt("conversation 3 does not exist", "conversation {id} does not exist", {"id": 3})
    assert error.params == {"id": 3} and error_text(error) == "разговора 3 нет"


# --- timeline lines --------------------------------------------------------------------------


async def test_timeline_lines_keep_english_in_body_and_their_phrase_in_meta(store, russian):
    cid = await _conversation(store)
    await store.add_operator("ann", "Ann", OperatorRole.AGENT)
    await store.assign(cid, "ann", "boss")
    await store.set_subject(cid, "Возврат {денег}", "boss")
    await store.set_status(cid, ConversationStatus.PENDING, "boss")
    await store.assign(cid, None, "boss")
    rows = await _event_rows(store, cid)
    assert [body for body, _ in rows] == [
        "assigned to ann",
        "boss renamed the subject to «Возврат {денег}»",
        "marked pending",
        "unassigned",
    ]
    assert [render(line) for _, line in rows] == [
        "назначил(а) на ann",
        "boss сменил(а) тему на «Возврат {денег}»",
        "перевёл(а) в ожидание клиента",
        "снял(а) назначение",
    ]


async def test_a_blocked_and_unblocked_customer_reads_back_as_the_status_in_words(store, russian):
    cid = await _conversation(store)
    await store.set_status(cid, ConversationStatus.PENDING, "ann")
    customer = (await store.conversation(cid)).customer_id
    await store.block_sender(customer, None, "ann")
    await store.unblock_customer(customer, "ann")
    rows = await _event_rows(store, cid)
    assert rows[-1][0] == "ann unblocked this customer: back as pending"
    assert render(rows[-1][1]) == "ann разблокировал(а) клиента: разговор снова ждёт клиента"
    assert render(rows[-2][1]) == "ann заблокировал(а) клиента: разговор перенесён в Спам"


# --- rules, macros and the journey advice ----------------------------------------------------


def test_rule_actions_are_described_in_english_and_drawn_in_russian(russian):
    actions = [
        Action("add_labels", ("refund", "vip")),
        Action("priority", 2),
        Action("snooze", 7200.0),
        Action("notify", "look", ()),
    ]
    assert [a.describe() for a in actions] == [
        "add labels refund, vip",
        "set priority urgent",
        "snooze for 2 h",
        "notify the assignee (everyone when none): 'look'",
    ]
    assert [a.said() for a in actions] == [
        "добавить метки refund, vip",
        "поставить приоритет «срочный»",
        "отложить на 2 ч",
        "уведомить ответственного (всех, если его нет): 'look'",
    ]


async def test_a_macro_is_previewed_and_recorded_in_the_readers_language(store, russian):
    import tomllib

    book = parse_rulebook(
        tomllib.loads(
            '[[macros]]\nname = "Close"\nactions = [ { add_labels = ["done"] }, { assign = "nobody" }, { resolve = true } ]'
        )
    )
    macro = book.macros[0]
    assert macro.describe() == ["добавить метку done", "назначить на nobody", "решить"]
    cid = await _conversation(store)
    did = await run_macro(store, macro, cid, "ann")
    assert did == ["добавить метку done", "не удалось: назначить на nobody — nobody не оператор", "решить"]
    body, line = (await _event_rows(store, cid))[-1]
    # The English line is what the events log, search and older windows read.
    assert body == "ann ran macro Close: add label done; could not assign to nobody: nobody is not an operator; resolve"
    assert render(line) == "ann запустил(а) макрос Close: " + "; ".join(did)
    events = await store.events_since(0)
    ran = next(e for e in events if e.kind == "macro.ran")
    assert json.loads(ran.payload)["did"] == [
        "add label done",
        "could not assign to nobody: nobody is not an operator",
        "resolve",
    ]


def test_the_journey_advice_is_said_in_the_operators_language(russian):
    from omniconsole.analytics import journeys as j

    def cell(channel: str, n: int, good: int) -> j.Cell:
        return j.Cell("refunds", channel, n, good, good / n, good / n, j.wilson(good, n))

    table = {("refunds", "telegram"): cell("telegram", 80, 24), ("refunds", "phone"): cell("phone", 80, 72)}
    advice = j.advise(table, "refunds", "telegram", {"telegram", "phone"}, j.JourneySettings())
    assert advice is not None
    assert advice.words == "Refunds: по телефону с первого обращения решается 90%, в Telegram — 30% (n=80/80)"
    i18n.set_language("en")
    assert advice.words == "Refunds: by phone 90% resolved in one contact, in Telegram 30% (n=80/80)"


async def test_the_bots_handoff_note_is_drawn_in_the_operators_language(tmp_path, store, russian):
    """The operator's note at a handoff keeps English in its body and is drawn from its phrase;
    the customer's own words and the bot's name are kept as they are."""
    from tests.unit.test_bot_states import make_rig

    rig = await make_rig(tmp_path, store, {"bot": "answer", "bot_name": "Bot"})
    conversation_id = await rig.say("what is the capital of France")
    note = next(e for e in await store.timeline(conversation_id) if e.direction == "note")
    assert note.body.startswith("Bot handed this conversation to a person: low confidence (")
    assert note.body.endswith("Answers sent: none.\nThe customer's last words: «what is the capital of France»")
    drawn = render(json.loads(note.meta)["line"])
    first, *rest = drawn.split("\n")
    assert first.startswith("Bot передал разговор оператору: низкая уверенность (")
    assert rest[-2:] == ["Отправленные ответы: нет.", "Последние слова клиента: «what is the capital of France»"]
    assert rest[0].startswith("Язык: ")
    # Retention erases the note's words in both places: its body and the phrase in its meta.
    await store.erase_texts_before(note.created_at + 1)
    note = next(e for e in await store.timeline(conversation_id) if e.direction == "note")
    assert (note.body, note.meta) == ("", None)


async def test_a_crm_that_is_down_is_said_in_the_language_of_the_moment(tmp_path, russian):
    """The card's reason is kept as a phrase: a cached record reads in the language switched to."""
    from omniconsole.integrations.crm import UNAVAILABLE, CrmLookup
    from tests.connectors.test_crm_lookup import crm_peer, crm_settings

    async with crm_peer() as crm:
        base = crm.url  # the peer is gone after this block: nothing answers there
    lookup = CrmLookup(crm_settings(base, tmp_path))
    try:
        record = await lookup.lookup(1, [("email", "anna@example.com")])
    finally:
        await lookup.close()
    assert record.status == UNAVAILABLE
    assert record.reason.startswith("CRM по адресу http://127.0.0.1:") and "недоступна: " in record.reason
    i18n.set_language("en")
    assert " is unreachable: " in record.reason


async def test_the_journeys_table_reads_in_russian_and_its_json_stays_english(tmp_path, store, russian):
    from omniconsole.analytics import journey_service as js
    from omniconsole.config import Settings

    await _conversation(store)
    settings = Settings(database=store.path, data_dir=tmp_path / "data", channels=[])
    report = await js.journeys_report(store, settings)
    table = js.render(report, "table")
    assert table.startswith("По темам\nтема ")
    for words in ("По каналу первого обращения", "Смены канала", "Самые частые пути", "всего", "Советы (контрольная группа 10%"):
        assert words in table
    assert json.loads(js.render(report, "json")).keys() == report.keys()  # machine output: unchanged keys
    i18n.set_language("en")
    assert js.render(report, "table").startswith("By topic\ntopic ")


async def test_the_bots_handoff_note_is_indexed_so_erasing_its_text_keeps_the_index_whole(tmp_path, store):
    """Before this change the note was never indexed, and retention's erasing it damaged the
    index ("database disk image is malformed"); the appended migration indexes older notes."""
    from omniconsole.store import search
    from omniconsole.store.schema import MIGRATIONS
    from tests.unit.test_bot_states import make_rig

    rig = await make_rig(tmp_path, store, {"bot": "answer", "bot_name": "Bot"})
    conversation_id = await rig.say("what is the capital of France")
    note = next(e for e in await store.timeline(conversation_id) if e.direction == "note")

    def indexed(conn) -> bool:
        return (
            conn.execute("SELECT 1 FROM messages_fts WHERE messages_fts MATCH '\"capital\"' AND rowid = ?", (note.id,)).fetchone()
            is not None
        )

    assert await store.db.run(indexed)
    # A note written by an older version: not in the index. The migration puts it there.
    await store.db.write(lambda c: search.unindex_message(c, note.id, note.body, note.customer_id))
    assert not await store.db.run(indexed)
    assert search.INDEX_OLD_HANDOFF_NOTES in MIGRATIONS
    migration = search.INDEX_OLD_HANDOFF_NOTES
    await store.db.write(lambda c: c.execute(migration))
    assert await store.db.run(indexed)
    assert await store.erase_texts_before(note.created_at + 1) >= 1
    await store.db.write(lambda c: c.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')"))
    assert not await store.db.run(indexed)
