"""The mailbox import: a Maildir and an mbox built here from the awkward corpus
(tests/connectors/mail_corpus/) and generated mail, imported into a fresh history."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from connectors.base import InboundMessage
from connectors.mail.mailbox import iter_maildir, iter_mbox
from connectors.mail_parse import message_key
from omniconsole.config import Settings
from omniconsole.core.mail_import import ThreadOrder, cmd_import, import_mailbox
from omniconsole.errors import UsageError
from omniconsole.models import ConversationStatus, IdentityKind
from omniconsole.store import Store

CORPUS = Path(__file__).parents[1] / "connectors" / "mail_corpus"
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def mail(
    message_id: str, sender: str, body: str, *, hours: int = 0, subject: str = "Заказ 1042", references: tuple[str, ...] = ()
) -> bytes:
    """A plain UTF-8 mail as a mail program writes it."""
    headers = [
        f"From: {sender}",
        "To: support@shop.example",
        f"Subject: {subject}",
        f"Date: {format_datetime(START + timedelta(hours=hours))}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    if references:
        headers += [f"In-Reply-To: {references[-1]}", "References: " + " ".join(references)]
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


# A thread of three: the customer asks, a colleague of theirs follows up (another address: only
# the thread links it), the customer answers again.
THREAD = [
    mail("<t1@customer.example>", "Anna <anna@customer.example>", "Где мой заказ?"),
    mail(
        "<t2@customer.example>",
        "Boris <boris@customer.example>",
        "Присоединяюсь к вопросу.",
        hours=2,
        subject="Re: Заказ 1042",
        references=("<t1@customer.example>",),
    ),
    mail(
        "<t3@customer.example>",
        "Anna <anna@customer.example>",
        "Нашла трек, спасибо.",
        hours=5,
        subject="Re: Заказ 1042",
        references=("<t1@customer.example>", "<t2@customer.example>"),
    ),
]
OWN = mail(
    "<ours-1@shop.example>",
    "Support <support@shop.example>",
    "We are looking into it.",
    hours=1,
    references=("<t1@customer.example>",),
)


def write_maildir(root: Path, mails: dict[str, list[bytes]]) -> Path:
    """A Maildir with the given mails per folder ("" is the inbox), delivered in list order."""
    for folder, raws in mails.items():
        for sub in ("cur", "new", "tmp"):
            (root / folder / sub).mkdir(parents=True, exist_ok=True)
        for number, raw in enumerate(raws):
            (root / folder / "cur" / f"{1700000000 + number}.M{number}P1.test:2,S").write_bytes(raw)
    return root


def write_mbox(path: Path, raws: list[bytes]) -> Path:
    """An mboxrd file: a "From " line before each mail, ">From " quoting inside."""
    with open(path, "wb") as out:
        for raw in raws:
            out.write(b"From MAILER-DAEMON Thu Jan  1 00:00:00 2024\n")
            text = raw.replace(b"\r\n", b"\n")
            for line in (text if text.endswith(b"\n") else text + b"\n").splitlines(keepends=True):
                out.write(b">" + line if line.lstrip(b">").startswith(b"From ") else line)
            out.write(b"\n")
    return path


def corpus_mails() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database=tmp_path / "omniconsole.db", data_dir=tmp_path / "data")


async def rows(store: Store, sql: str, *params) -> list[tuple]:
    return await store.db.run(lambda conn: [tuple(row) for row in conn.execute(sql, params)])


async def conversation_of(store: Store, message_id: str) -> int:
    return (await rows(store, "SELECT conversation_id FROM messages WHERE thread_key = ?", message_id))[0][0]


async def test_maildir_import_threads_files_and_unreadable(store: Store, settings: Settings, tmp_path: Path):
    corpus = corpus_mails()
    # The first mail of the thread sits in an archive folder, read after the inbox: the replies
    # must still land in its conversation.
    maildir = write_maildir(tmp_path / "Maildir", {"": [*corpus, THREAD[1], THREAD[2], OWN], ".Archive": [THREAD[0]]})
    seen = []
    summary = await import_mailbox(
        store, settings, iter_maildir(maildir), progress=seen.append, workers=0, own_addresses=["Support@Shop.example"]
    )

    assert summary.messages == len(corpus) + 4
    assert summary.own == 1
    assert summary.imported == len(corpus) + 3
    assert summary.duplicates == 0
    assert summary.reordered == 2
    assert seen and seen[-1].done == summary.messages

    # One conversation for the thread, although two people wrote in it.
    conversations = {await conversation_of(store, f"<t{n}@customer.example>") for n in (1, 2, 3)}
    assert len(conversations) == 1
    (conversation,) = conversations
    timeline = await store.timeline(conversation)
    assert [e.body for e in timeline if e.direction == "in"][:3] == [
        "Где мой заказ?",
        "Присоединяюсь к вопросу.",
        "Нашла трек, спасибо.",
    ]
    # Our own reply is not a customer writing.
    assert await rows(store, "SELECT count(*) FROM identities WHERE address = 'support@shop.example'") == [(0,)]

    # The unreadable file is counted with its reason and still stored, raw bytes kept.
    assert [reason for _, reason in summary.unreadable] == ["no mail headers found"]
    key = summary.unreadable[0][0]
    (body,) = await rows(store, "SELECT body FROM messages WHERE external_id = ?", key)
    assert body[0] == "could not be read: no mail headers found"

    # Attachments land content-addressed in the data directory.
    files = await rows(
        store,
        "SELECT a.filename, a.path, a.size FROM attachments a JOIN messages m ON m.id = a.message_id"
        " WHERE m.external_id = '<rfc2231-1@example.ru>'",
    )
    assert files and files[0][0].startswith("Счёт")
    path = settings.data_dir / "attachments" / files[0][1]
    assert path.is_file() and path.stat().st_size == files[0][2]


async def test_rerun_imports_nothing_and_counts_duplicates(store: Store, settings: Settings, tmp_path: Path):
    maildir = write_maildir(tmp_path / "Maildir", {"": [*corpus_mails(), *THREAD]})
    first = await import_mailbox(store, settings, iter_maildir(maildir), workers=0)
    before = await store.stats()
    again = await import_mailbox(store, settings, iter_maildir(maildir), workers=0)
    assert first.imported == first.messages and first.duplicates == 0
    assert again.messages == first.messages
    assert again.imported == 0 and again.duplicates == first.messages
    assert again.unreadable == []
    assert await store.stats() == before


async def test_the_same_mail_twice_in_a_mailbox_is_stored_once(store: Store, settings: Settings, tmp_path: Path):
    maildir = write_maildir(tmp_path / "Maildir", {"": THREAD, ".Archive": [THREAD[0]]})
    summary = await import_mailbox(store, settings, iter_maildir(maildir), workers=0)
    assert (summary.messages, summary.imported, summary.duplicates) == (4, 3, 1)


async def test_a_reply_reopens_its_resolved_conversation(store: Store, settings: Settings, tmp_path: Path):
    # (These mails are from 2024: keep them open, as a recent mailbox's would be.)
    await import_mailbox(store, settings, iter_maildir(write_maildir(tmp_path / "one", {"": THREAD})), workers=0, open_days=None)
    conversation = await conversation_of(store, "<t1@customer.example>")
    await store.set_status(conversation, ConversationStatus.RESOLVED, "alice")

    later = mail(
        "<t4@customer.example>",
        "Anna <anna@customer.example>",
        "Трек не обновляется.",
        hours=30,
        subject="Re: Заказ 1042",
        references=("<t1@customer.example>", "<t3@customer.example>"),
    )
    mbox = write_mbox(tmp_path / "later.mbox", [later])
    summary = await import_mailbox(store, settings, iter_mbox(mbox), workers=0, open_days=None)
    assert summary.imported == 1
    assert await conversation_of(store, "<t4@customer.example>") == conversation
    assert (await store.conversation(conversation)).status == ConversationStatus.OPEN


async def test_mbox_import(store: Store, settings: Settings, tmp_path: Path):
    quoting = mail("<from-line@customer.example>", "Ivan <ivan@customer.example>", "Hello,\r\nFrom what I see it broke.")
    raws = [*corpus_mails(), *THREAD, quoting]
    mbox = write_mbox(tmp_path / "support.mbox", raws)
    summary = await import_mailbox(store, settings, iter_mbox(mbox), channel_name="support mailbox", workers=0)
    assert summary.messages == len(raws)
    assert summary.imported == len(raws) and summary.duplicates == 0
    assert len(summary.unreadable) == 1
    (body,) = await rows(store, "SELECT body FROM messages WHERE external_id = '<from-line@customer.example>'")
    assert body[0] == "Hello,\nFrom what I see it broke."
    channels = {c.name: c.kind for c in await store.channels()}
    assert channels["support mailbox"] == "email"
    # The channel's cursor belongs to its live connector: the import leaves it alone.
    channel_id = (await rows(store, "SELECT id FROM channels WHERE name = 'support mailbox'"))[0][0]
    assert await store.cursor(channel_id) is None


async def test_parser_processes_give_the_same_history(settings: Settings, tmp_path: Path):
    from omniconsole.bench_mail import build_corpus

    maildir = build_corpus(tmp_path, 260)
    results = []
    for workers in (0, 2):
        store = await Store.open(tmp_path / f"w{workers}.db")
        try:
            summary = await import_mailbox(store, settings, iter_maildir(maildir), workers=workers)
            results.append(
                (
                    summary.messages,
                    summary.imported,
                    len(summary.unreadable),
                    summary.conversations,
                    summary.reordered,
                    await store.stats(),
                )
            )
        finally:
            await store.close()
    assert results[0] == results[1]
    assert results[0][0] == 261 and results[0][2] == 1


def message(external_id: str, *replies_to: str) -> InboundMessage:
    return InboundMessage(
        external_id=external_id,
        identity_kind=IdentityKind.EMAIL,
        address="a@b.example",
        body="x",
        sent_at=START,
        thread_key=external_id,
        reply_to_keys=replies_to,
    )


def test_thread_order_puts_parents_first_and_bounds_what_it_holds():
    order = ThreadOrder(max_messages=2)
    assert order.offer(message("<c>", "<b>")) == []
    assert order.offer(message("<d>", "<zz>")) == []
    # A third held reply pushes the oldest out as it is.
    assert [m.external_id for m in order.offer(message("<e>", "<yy>"))] == ["<c>"]
    assert [m.external_id for m in order.offer(message("<b>"))] == ["<b>"]
    assert [m.external_id for m in order.offer(message("<zz>"))] == ["<zz>", "<d>"]
    assert [m.external_id for m in order.flush()] == ["<e>"]
    assert order.reordered == 1


def test_thread_order_releases_a_chain_at_once():
    order = ThreadOrder()
    assert order.offer(message("<3>", "<2>")) == []
    assert order.offer(message("<2>", "<1>")) == []
    assert [m.external_id for m in order.offer(message("<1>"))] == ["<1>", "<2>", "<3>"]
    assert order.seen("<x>") == [] and order.flush() == []


def cli_args(tmp_path: Path, command: str, path: Path, **extra) -> argparse.Namespace:
    values = {
        "config": None,
        "db": str(tmp_path / "cli.db"),
        "import_command": command,
        "path": str(path),
        "channel": "import",
        "own_address": None,
        "workers": 0,
        "json": True,
        "open_days": 14,
    }
    values.update(extra)
    return argparse.Namespace(**values)


def test_command_prints_a_summary_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch):
    monkeypatch.chdir(tmp_path)
    maildir = write_maildir(tmp_path / "Maildir", {"": [*corpus_mails(), *THREAD]})
    assert cmd_import(cli_args(tmp_path, "maildir", maildir)) == 0
    out = capsys.readouterr().out.splitlines()
    figures = json.loads(out[-1])
    assert figures["imported"] == figures["messages"] == len(corpus_mails()) + 3
    assert figures["unreadable"] == [
        {"id": message_key((CORPUS / "not_mail.eml").read_bytes()), "reason": "no mail headers found"}
    ]
    assert any(line.startswith("unreadable") for line in out)
    assert cmd_import(cli_args(tmp_path, "maildir", maildir)) == 0
    figures = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert figures["imported"] == 0 and figures["duplicates"] == figures["messages"]


def test_command_refuses_what_is_not_a_mailbox(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="not a Maildir"):
        cmd_import(cli_args(tmp_path, "maildir", tmp_path))
    with pytest.raises(UsageError, match="not a file"):
        cmd_import(cli_args(tmp_path, "mbox", tmp_path / "missing.mbox"))


async def test_old_threads_arrive_resolved_recent_ones_open(store: Store, settings: Settings, tmp_path: Path):
    recent = mail("<new-1@customer.example>", "Vera <vera@customer.example>", "Ответьте, пожалуйста", subject="Возврат")
    recent = recent.replace(format_datetime(START).encode(), format_datetime(datetime.now(UTC) - timedelta(hours=3)).encode())
    maildir = write_maildir(tmp_path / "Maildir", {"": [*THREAD, recent]})
    summary = await import_mailbox(store, settings, iter_maildir(maildir), workers=0)
    assert (summary.conversations, summary.resolved) == (2, 1)
    old, new = await conversation_of(store, "<t1@customer.example>"), await conversation_of(store, "<new-1@customer.example>")
    assert [(await store.conversation(old)).status, (await store.conversation(new)).status] == ["resolved", "open"]
    ((resolved_at, last_activity),) = await rows(
        store, "SELECT resolved_at, last_activity_at FROM conversations WHERE id = ?", old
    )
    assert resolved_at == last_activity  # resolved as of its last mail, not "now"
    kinds = await rows(store, "SELECT actor, payload FROM events WHERE kind = 'conversation.resolved'")
    assert kinds == [("import", '{"reason": "imported mail older than 14 days"}')]


async def test_open_days_none_leaves_every_imported_conversation_open(store: Store, settings: Settings, tmp_path: Path):
    maildir = write_maildir(tmp_path / "Maildir", {"": THREAD})
    summary = await import_mailbox(store, settings, iter_maildir(maildir), workers=0, open_days=None)
    assert summary.resolved == 0
    assert (await store.conversation(await conversation_of(store, "<t1@customer.example>"))).status == "open"
