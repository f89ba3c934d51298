"""One customer across channels: identity resolution, suggestions, merge/unmerge, edits,
export and erase, on a real store through the real ingest path."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import InboundAttachment
from omniconsole.core.identity import mentioned_identities, normalize_address
from omniconsole.core.ingest import Ingestor
from omniconsole.errors import StoreError
from omniconsole.models import ConversationStatus, IdentityKind, OperatorRole
from omniconsole.store import Store, history
from omniconsole.store import customers as customer_store
from omniconsole.store.database import connect, write_transaction
from tests.conftest import inbound

T, E, P, W, V = IdentityKind.TELEGRAM, IdentityKind.EMAIL, IdentityKind.PHONE, IdentityKind.WHATSAPP, IdentityKind.VK


async def channel(store: Store, kind: str) -> int:
    return await store.ensure_channel(kind, kind)


async def deliver(store: Store, ingestor: Ingestor, kind: str, *messages) -> None:
    await ingestor.ingest(await channel(store, kind), kind, list(messages), None)


async def customer_of(store: Store, kind: IdentityKind, address: str) -> int:
    def q(conn):
        return conn.execute("SELECT customer_id FROM identities WHERE kind = ? AND address = ?", (kind, address)).fetchone()[0]

    return await store.db.run(q)


# --- normalisation: the same identity is the same customer ------------------------------------

PHONE_SPELLINGS = [
    (P, "8 (999) 123-45-67"),
    (P, "+7 999 1234567"),
    (P, "89991234567"),
    (P, "+7(999)123-45-67"),
    (W, "79991234567"),  # a WhatsApp wa_id is the international number without +
    (P, "9991234567"),  # no trunk prefix: read in the default region
]
EMAIL_SPELLINGS = ["Ivan@Пример.рф", "ivan@xn--e1afmkfd.xn--p1ai", " <IVAN@ПРИМЕР.РФ> ", "iVaN@пример.РФ"]


async def test_every_spelling_of_one_phone_is_one_customer(store, tmp_path):
    ingestor = Ingestor(store, tmp_path, "RU")
    for n, (kind, spelling) in enumerate(PHONE_SPELLINGS):
        await deliver(store, ingestor, str(kind), inbound(f"p{n}", "hi", kind=kind, address=spelling))
    # A Telegram user who shares their contact with that number: their phone identity is the
    # same one, so it is a conflict, not a new number (the Telegram account is someone new).
    ids = {await customer_of(store, kind, "+79991234567") for kind in (P, W)}
    assert len(ids) == 1
    profile = await store.customer_profile(ids.pop())
    assert sorted((i.kind, i.address) for i in profile.identities) == [("phone", "+79991234567"), ("whatsapp", "+79991234567")]
    assert len(profile.conversations) == 1 and profile.conversations[0].message_count == len(PHONE_SPELLINGS)


async def test_every_spelling_of_one_email_is_one_customer(store, tmp_path):
    ingestor = Ingestor(store, tmp_path, "RU")
    for n, spelling in enumerate(EMAIL_SPELLINGS):
        await deliver(store, ingestor, "email", inbound(f"e{n}", "hi", kind=E, address=spelling))
    stats = await store.stats()
    assert stats["customers"] == 1
    assert await customer_of(store, E, "ivan@xn--e1afmkfd.xn--p1ai")


async def test_a_region_decides_numbers_without_country_code(store, tmp_path):
    kz = Ingestor(store, tmp_path, "KZ")
    await deliver(store, kz, "phone", inbound("k1", kind=P, address="8 (701) 123-45-67"))
    assert await customer_of(store, P, "+77011234567")


@pytest.mark.parametrize(
    ("source", "spelling", "address"),
    [
        ("PBX caller id, country code without +", "998901234567", "+998901234567"),
        ("PBX caller id, international prefix 00", "00998901234567", "+998901234567"),
        ("Telegram shared contact (no +)", "998 90 123 45 67", "+998901234567"),
        ("typed in the region's trunk form", "8 (999) 123-45-67", "+79991234567"),
        ("the region's number with its country code", "79991234567", "+79991234567"),
        ("web chat, written with +", "+998 (90) 123-45-67", "+998901234567"),
        ("CRM export with a Russian extension", "+7 (495) 123-45-67 доб. 101", "+74951234567;ext=101"),
        ("RFC 3966 with an extension", "tel:+7-495-123-45-67;ext=101", "+74951234567;ext=101"),
        ("an English extension", "+7 495 123 45 67 ext. 7", "+74951234567;ext=7"),
        ("valid in no reading: kept as digits", "12-34", "1234"),
    ],
)
def test_a_phone_is_read_in_the_region_then_with_a_plus_before_it_is_kept_as_digits(source, spelling, address):
    assert normalize_address(P, spelling, "RU") == address, source


async def test_one_number_from_every_source_is_one_customer(store, tmp_path):
    """Real-world case 10's kind: the same number from a PBX, WhatsApp, the open API and a
    Telegram shared contact, each spelt its own way, is one person."""
    ingestor = Ingestor(store, tmp_path, "RU")
    await deliver(store, ingestor, "telephony", inbound("p1", "", kind=P, address="998901234567", sender_name="Dilshod Testov"))
    await deliver(store, ingestor, "whatsapp", inbound("w1", kind=W, address="998901234567", sender_name="Dilshod"))
    await deliver(store, ingestor, "api", inbound("a1", kind=P, address="00 998 90 123-45-67"))
    dilshod = await customer_of(store, P, "+998901234567")
    assert await customer_of(store, W, "+998901234567") == dilshod
    assert (await store.stats())["customers"] == 1
    # A Telegram account sharing that number (Telegram sends it without +) is suggested, not a
    # second owner of the number.
    await deliver(
        store, ingestor, "telegram", inbound("t1", address="55", sender_name="D", extra_identities=((P, "998901234567"),))
    )
    [s] = (await store.customer_profile(await customer_of(store, T, "55"))).suggestions
    assert s.other_id == dilshod and s.reason == "gave the phone +998901234567, which belongs to Dilshod Testov"


async def test_extensions_of_one_office_number_are_separate_people_and_the_bare_number_is_a_suggestion(store, tmp_path):
    """Real-world case 15's kind, in every order: whoever comes first (the bare office number
    or a colleague with an extension), the others are suggestions, never a silent match."""
    ingestor = Ingestor(store, tmp_path, "RU")
    # The office line calls first; then an operator types a colleague's number with extension.
    await deliver(store, ingestor, "telephony", inbound("c1", "", kind=P, address="+7 495 123-45-67"))
    office = await customer_of(store, P, "+74951234567")
    ivan = await store.db.write(history.add_customer, "Иван Пробный", [])
    await store.add_identity(ivan, "phone", normalize_address(P, "+7 495 123-45-67 доб. 101", "RU"), "alice")
    [s] = (await store.customer_profile(ivan)).suggestions
    assert s.other_id == office
    assert (
        s.reason
        == "one office number +74951234567: «+7 495 123-45-67» has it without an extension, «Иван Пробный» with extension 101"
    )
    # A second colleague, from a Telegram shared contact: suggested with the line, not with Ivan.
    await deliver(
        store,
        ingestor,
        "telegram",
        inbound("t1", address="77", sender_name="Мария Тестова", extra_identities=((P, "+74951234567 ext. 102"),)),
    )
    maria = await customer_of(store, T, "77")
    assert await customer_of(store, P, "+74951234567;ext=102") == maria
    assert [s.other_id for s in (await store.customer_profile(maria)).suggestions] == [office]
    assert sorted(s.other_id for s in (await store.customer_profile(office)).suggestions) == sorted([ivan, maria])
    # A message naming a colleague's number with its extension is evidence about that colleague.
    assert mentioned_identities("звоните +7 495 123-45-67 доб. 102", "RU") == [(IdentityKind.PHONE, "+74951234567;ext=102")]
    # The same extension again is the same person.
    await deliver(store, ingestor, "telephony", inbound("c2", "", kind=P, address="84951234567 доб. 101"))
    assert (await store.stats())["customers"] == 3


def test_mentions_find_emails_and_valid_phones_only():
    text = "мой телефон 8 (999) 123-45-67, почта Ivan@Пример.рф. Заказ 1234567 от 2024-11-12, ИНН 7707083893"
    assert mentioned_identities(text, "RU") == [
        (IdentityKind.EMAIL, "ivan@xn--e1afmkfd.xn--p1ai"),
        (IdentityKind.PHONE, "+79991234567"),
    ]
    assert mentioned_identities("order 12345 delivered 2024-11-12 at 10:30", "RU") == []


# --- suggestions, never silent merges ---------------------------------------------------------


async def test_a_message_naming_another_customers_email_suggests_not_merges(store, tmp_path):
    ingestor = Ingestor(store, tmp_path, "RU")
    await deliver(store, ingestor, "email", inbound("m1", "hello", kind=E, address="olga@example.com", sender_name="Olga K"))
    await deliver(
        store, ingestor, "telegram", inbound("t1", "I wrote from Olga@Example.com yesterday", address="42", sender_name="Оля")
    )
    olga, tg = await customer_of(store, E, "olga@example.com"), await customer_of(store, T, "42")
    assert olga != tg  # nothing merged
    [suggestion] = (await store.customer_profile(tg)).suggestions
    assert suggestion.other_id == olga
    assert suggestion.reason == "wrote the e-mail olga@example.com, which belongs to Olga K"
    # The other side sees it too.
    assert [s.other_id for s in (await store.customer_profile(olga)).suggestions] == [tg]

    await store.dismiss_suggestion(suggestion.id, "alice")
    await deliver(store, ingestor, "telegram", inbound("t2", "again: olga@example.com", address="42"))
    assert (await store.customer_profile(tg)).suggestions == ()
    assert (await store.customer_profile(olga)).suggestions == ()


async def test_a_shared_contact_with_someone_elses_phone_is_a_suggestion(store, tmp_path):
    ingestor = Ingestor(store, tmp_path, "RU")
    await deliver(store, ingestor, "whatsapp", inbound("w1", "hi", kind=W, address="79991234567", sender_name="Ivan"))
    await deliver(
        store,
        ingestor,
        "telegram",
        inbound("t1", "[contact]", address="7", sender_name="Ivan P", extra_identities=((P, "8 999 123 45 67"),)),
    )
    wa, tg = await customer_of(store, W, "+79991234567"), await customer_of(store, T, "7")
    assert wa != tg
    [s] = (await store.customer_profile(tg)).suggestions
    assert s.other_id == wa and "gave the phone +79991234567, which belongs to Ivan" == s.reason


async def test_same_full_name_suggests_but_a_common_name_does_not(store, tmp_path):
    ingestor = Ingestor(store, tmp_path, "RU")
    await deliver(store, ingestor, "email", inbound("e1", kind=E, address="ip@example.com", sender_name="Иван Петров"))
    await deliver(store, ingestor, "telegram", inbound("t1", address="1", sender_name="петров иван"))
    tg = await customer_of(store, T, "1")
    [s] = (await store.customer_profile(tg)).suggestions
    assert s.reason == "the same full name «петров иван»"
    # One first name proves nothing.
    await deliver(store, ingestor, "telegram", inbound("t2", address="2", sender_name="Иван"))
    assert (await store.customer_profile(await customer_of(store, T, "2"))).suggestions == ()
    # A name five people share is no evidence either.
    for n in range(5):
        await deliver(store, ingestor, "vk", inbound(f"v{n}", kind=V, address=str(100 + n), sender_name="Anna Smirnova"))
    assert (await store.customer_profile(await customer_of(store, V, "104"))).suggestions == ()


# --- merge and unmerge ------------------------------------------------------------------------


def snapshot(path: Path) -> dict:
    """Every row that says who owns what, plus what one-customer search finds."""
    conn = sqlite3.connect(path)
    try:
        state = {
            "identities": conn.execute("SELECT id, customer_id, kind, address FROM identities ORDER BY id").fetchall(),
            "conversations": conn.execute("SELECT id, customer_id, status FROM conversations ORDER BY id").fetchall(),
            "messages": conn.execute("SELECT id, customer_id, conversation_id, body FROM messages ORDER BY id").fetchall(),
            "customers": conn.execute(
                "SELECT id, display_name, note, attributes, merged_into FROM customers ORDER BY id"
            ).fetchall(),
            "labels": conn.execute("SELECT customer_id, label_id FROM customer_labels ORDER BY 1, 2").fetchall(),
            "fts": conn.execute(
                "SELECT rowid, customer_id FROM messages_fts WHERE messages_fts MATCH 'body : hello' ORDER BY rowid"
            ).fetchall(),
            "customers_fts": conn.execute("SELECT rowid, name, identities FROM customers_fts ORDER BY rowid").fetchall(),
        }
    finally:
        conn.close()
    return state


async def test_merge_then_unmerge_restores_exactly(store, tmp_path):
    ingestor = Ingestor(store, tmp_path, "RU")
    await deliver(store, ingestor, "telegram", inbound("t1", "hello from telegram", address="1", sender_name="Ivan"))
    await deliver(
        store, ingestor, "email", inbound("e1", "hello by mail", kind=E, address="ivan@example.com", sender_name="I. Petrov")
    )
    tg, mail = await customer_of(store, T, "1"), await customer_of(store, E, "ivan@example.com")
    await store.update_customer(tg, "alice", note="VIP", attributes={"plan": "gold"}, labels=["vip"])
    await store.update_customer(mail, "alice", note="prefers e-mail", attributes={"plan": "free", "city": "Омск"}, labels=["b2b"])
    before = snapshot(store.path)

    merge_id = await store.merge_customers(tg, mail, "alice", "same person, confirmed by phone")
    profile = await store.customer_profile(tg)
    assert sorted(i.kind for i in profile.identities) == ["email", "telegram"]
    assert len(profile.conversations) == 2
    assert profile.labels == ("b2b", "vip")
    assert profile.attributes == {"plan": "gold", "city": "Омск"}  # the survivor's value wins
    assert profile.note == "VIP\nprefers e-mail"
    assert profile.journey == ("telegram", "email")
    [record] = profile.merges
    assert (record.merged_id, record.actor, record.reason) == (mail, "alice", "same person, confirmed by phone")
    # The merged customer's id still leads to the person.
    assert (await store.customer_profile(mail)).id == tg
    hits = await store.search("hello", customer_id=tg)
    assert len(hits.messages) == 2
    # New mail from the merged address lands with the survivor.
    await deliver(store, ingestor, "email", inbound("e2", "hello again", kind=E, address="ivan@example.com"))
    assert await customer_of(store, E, "ivan@example.com") == tg

    await store.unmerge(merge_id, "bob")
    after = snapshot(store.path)
    # Exactly as before, but for the message that arrived meanwhile (it followed its
    # conversation back to the merged customer).
    e2 = [m for m in after["messages"] if m[3] == "hello again"]
    assert [m[1] for m in e2] == [mail]
    after["messages"] = [m for m in after["messages"] if m[3] != "hello again"]
    after["fts"] = [r for r in after["fts"] if r[0] != e2[0][0]]
    conv_after = dict((c[0], c[1]) for c in after["conversations"])
    assert conv_after == dict((c[0], c[1]) for c in before["conversations"])
    for key in ("identities", "messages", "customers", "labels", "fts", "customers_fts"):
        assert after[key] == before[key], key
    events = await store.events_since(0, limit=10000)
    kinds = [e.kind for e in events]
    assert "customer.merged" in kinds and "customer.unmerged" in kinds
    merged_event = next(e for e in events if e.kind == "customer.merged")
    assert merged_event.actor == "alice" and json.loads(merged_event.payload)["reason"] == "same person, confirmed by phone"


async def test_merge_refusals_are_plain(store, tmp_path):
    ingestor = Ingestor(store, tmp_path, "RU")
    for n in (1, 2, 3):
        await deliver(store, ingestor, "telegram", inbound(f"t{n}", address=str(n)))
    a, b, c = [await customer_of(store, T, str(n)) for n in (1, 2, 3)]
    with pytest.raises(StoreError, match="themselves"):
        await store.merge_customers(a, a, "alice")
    first = await store.merge_customers(b, a, "alice")
    with pytest.raises(StoreError, match="already merged into"):
        await store.merge_customers(c, a, "alice")
    await store.merge_customers(c, b, "alice")
    with pytest.raises(StoreError, match="undo that merge first"):
        await store.unmerge(first, "alice")
    with pytest.raises(StoreError, match="no customer 999"):
        await store.merge_customers(c, 999, "alice")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(["merge", "unmerge"]), st.integers(0, 5), st.integers(0, 5)), max_size=25))
def test_no_sequence_of_merges_and_unmerges_loses_or_doubles_a_message(tmp_path_factory, steps):
    """Six customers with messages on several channels; random merges and undos (the ones the
    store refuses are skipped). Every message stays exactly once, with the customer of its
    conversation; undoing every merge, newest first, gives back the start."""
    path = tmp_path_factory.mktemp("merge") / "db.sqlite"
    conn = connect(path)
    from omniconsole.store.history import InboundRecord, ingest_batch

    write_transaction(conn, lambda c: c.execute("INSERT INTO channels (kind, name, created_at) VALUES ('telegram', 'tg', 0)"))
    records = [InboundRecord(f"x{n}", "telegram", str(n % 6), f"hello {n}", float(n), sender_name=f"c{n % 6}") for n in range(30)]
    write_transaction(conn, ingest_batch, 1, "telegram", records, None)
    # Some messages sit in someone else's conversation (a colleague answering in a customer's
    # e-mail thread): they belong to their sender whatever happens to the thread.
    write_transaction(
        conn,
        lambda c: c.execute(
            "UPDATE messages SET conversation_id = (SELECT id FROM conversations WHERE customer_id ="
            " (SELECT customer_id FROM messages WHERE external_id = 'x0')) WHERE external_id IN ('x25', 'x26', 'x27')"
        ),
    )
    start = sorted(tuple(r) for r in conn.execute("SELECT id, customer_id FROM messages"))
    ids = [r[0] for r in conn.execute("SELECT id FROM customers ORDER BY id")]
    done: list[int] = []
    for action, x, y in steps:
        try:
            if action == "merge":
                done.append(write_transaction(conn, customer_store.merge_customers, ids[x], ids[y], "t"))
            elif done:
                merge_id = done[x % len(done)]
                write_transaction(conn, customer_store.unmerge, merge_id, "t")
                done.remove(merge_id)
        except StoreError:
            pass
        rows = [
            tuple(r)
            for r in conn.execute(
                "SELECT m.id, m.customer_id, c.customer_id, m.external_id FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            )
        ]
        assert len(rows) == 30 and len({r[0] for r in rows}) == 30
        # Each message is with its sender: the customer their identity belongs to now.
        owners = {
            r[0]: r[1]
            for r in conn.execute("SELECT m.id, i.customer_id FROM messages m JOIN identities i ON i.id = m.identity_id")
        }
        assert all(r[1] == owners[r[0]] for r in rows)
        # Nothing lives on a customer that was merged away.
        assert (
            conn.execute(
                "SELECT COUNT(*) FROM identities i JOIN customers c ON c.id = i.customer_id WHERE c.merged_into IS NOT NULL"
            ).fetchone()[0]
            == 0
        )
        fts = [tuple(r) for r in conn.execute("SELECT rowid, customer_id FROM messages_fts WHERE messages_fts MATCH 'hello'")]
        assert sorted(fts) == sorted((r[0], r[1]) for r in rows)
        assert (
            conn.execute(
                "SELECT COUNT(*) FROM messages m JOIN customers c ON c.id = m.customer_id WHERE c.merged_into IS NOT NULL"
            ).fetchone()[0]
            == 0
        )
    for merge_id in sorted(done, reverse=True):
        write_transaction(conn, customer_store.unmerge, merge_id, "t")
    assert sorted(tuple(r) for r in conn.execute("SELECT id, customer_id FROM messages")) == start
    conn.close()


# --- edits, export, erase ---------------------------------------------------------------------


async def test_operator_edits_and_a_channel_never_renames_an_edited_name(store, tmp_path):
    ingestor = Ingestor(store, tmp_path, "RU")
    await deliver(store, ingestor, "telegram", inbound("t1", address="1", sender_name="ivan_the_great"))
    customer = await customer_of(store, T, "1")
    changed = await store.update_customer(
        customer,
        "alice",
        name="Иван Петров",
        note="call after 18:00",
        attributes={"plan": "gold", " ": "x"},
        labels=["vip", " vip "],
    )
    assert changed == ["name", "note", "attributes", "labels"]
    await deliver(store, ingestor, "telegram", inbound("t2", address="1", sender_name="new nick"))
    profile = await store.customer_profile(customer)
    assert (profile.display_name, profile.name_source, profile.note) == ("Иван Петров", "operator", "call after 18:00")
    assert profile.attributes == {"plan": "gold"} and profile.labels == ("vip",)
    assert await store.update_customer(customer, "alice", note="call after 18:00") == []
    assert await store.add_identity(customer, "email", "ivan@example.com", "alice")
    hits = await store.search("ivan@example.com")
    assert [c.customer_id for c in hits.customers] == [customer]


async def test_export_has_everything_and_erase_keeps_only_counts(store, tmp_path):
    ingestor = Ingestor(store, tmp_path, "RU")
    await deliver(
        store,
        ingestor,
        "telegram",
        inbound(
            "t1",
            "my secret address is Lenina 1",
            address="5",
            sender_name="Pavel",
            attachments=(InboundAttachment("passport.txt", "text/plain", b"passport 1234 567890"),),
        ),
    )
    await deliver(
        store, ingestor, "email", inbound("e1", "hello, Pavel here", kind=E, address="pavel@example.com", sender_name="Pavel S")
    )
    pavel, other = await customer_of(store, T, "5"), await customer_of(store, E, "pavel@example.com")
    await store.merge_customers(pavel, other, "alice", "same person")
    conversation = (await store.customer_profile(pavel)).conversations[0].id
    await store.queue_reply(conversation, "Dear Pavel, your order ships today", "alice")

    export = await store.export_customer(other, "alice")  # a merged id exports the person
    assert export["customer"]["id"] == pavel and export["customer"]["merged_from"] == [other]
    bodies = [m["body"] for c in export["conversations"] for m in c["messages"]]
    assert "my secret address is Lenina 1" in bodies and "hello, Pavel here" in bodies
    assert {i["address"] for i in export["identities"]} == {"5", "pavel@example.com"}
    [att] = [a for c in export["conversations"] for m in c["messages"] for a in m["attachments"]]
    assert att["filename"] == "passport.txt"
    json.dumps(export)  # plain JSON

    file_path = tmp_path / "attachments" / att["path"]
    assert file_path.exists()
    result = await store.erase_customer(pavel, "alice", attachments_dir=tmp_path / "attachments")
    assert result["messages"] == 3 and result["identities"] == {"email": 1, "telegram": 1} and result["files_deleted"] == 1
    assert not file_path.exists()

    conn = sqlite3.connect(store.path)
    dump = "\n".join(
        str(row)
        for table in ("customers", "identities", "messages", "conversations", "attachments", "events", "merge_suggestions")
        for row in conn.execute(f"SELECT * FROM {table}")
    )
    for secret in ("Lenina", "Pavel", "pavel@example.com", "passport"):
        assert secret not in dump, secret
    # Counts for statistics survive: the message rows, their channels, directions and times.
    assert conn.execute("SELECT direction, COUNT(*) FROM messages GROUP BY direction ORDER BY 1").fetchall() == [
        ("in", 2),
        ("out", 1),
    ]
    assert conn.execute("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'secret'").fetchone()[0] == 0
    assert [k for (k,) in conn.execute("SELECT kind FROM events WHERE kind LIKE 'customer.e%' ORDER BY id")] == [
        "customer.exported",
        "customer.erased",
    ]
    conn.close()
    assert not (await store.search("Pavel")).customers
    # The same Telegram account writing again is a new customer: nothing links them.
    await deliver(store, ingestor, "telegram", inbound("t9", "hi again", address="5", sender_name="Pavel"))
    assert await customer_of(store, T, "5") != pavel


async def test_unmerge_gives_messages_back_by_sender_not_by_thread(store, tmp_path):
    """Carol answers in Bob's e-mail thread; Ann (the survivor) answers in it too while merged.
    After the undo Bob's thread is Bob's again, but Carol's and Ann's messages stay theirs."""
    ingestor = Ingestor(store, tmp_path, "RU")
    mail_in = lambda eid, body, address, **kw: inbound(eid, body, kind=E, address=address, thread_key=eid, **kw)  # noqa: E731
    await deliver(store, ingestor, "email", mail_in("<b1@x>", "bob asks", "bob@example.com", sender_name="Bob"))
    await deliver(store, ingestor, "email", mail_in("<a1@x>", "ann asks", "ann@example.com", sender_name="Ann"))
    await deliver(
        store,
        ingestor,
        "email",
        mail_in("<c1@x>", "carol joins", "carol@example.com", sender_name="Carol", reply_to_keys=("<b1@x>",)),
    )
    bob, ann, carol = [await customer_of(store, E, f"{n}@example.com") for n in ("bob", "ann", "carol")]
    merge = await store.merge_customers(ann, bob, "alice")
    await deliver(
        store, ingestor, "email", mail_in("<a2@x>", "ann in bob's thread", "ann@example.com", reply_to_keys=("<b1@x>",))
    )
    await deliver(store, ingestor, "email", mail_in("<b2@x>", "bob again", "bob@example.com", reply_to_keys=("<b1@x>",)))
    await store.unmerge(merge, "alice")

    def owners(conn):
        return dict(conn.execute("SELECT body, customer_id FROM messages WHERE direction = 'in'").fetchall())

    assert await store.db.run(owners) == {
        "bob asks": bob,
        "ann asks": ann,
        "carol joins": carol,
        "ann in bob's thread": ann,
        "bob again": bob,
    }


def _raw_database_text(path: Path) -> bytes:
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


async def test_erase_reaches_the_whole_merge_tree_and_leaves_no_trace(store, tmp_path):
    ingestor = Ingestor(store, tmp_path, "RU")
    await deliver(
        store, ingestor, "telegram", inbound("t1", "zzyzx street 12, passport qx4510", address="11", sender_name="Zelda Quux")
    )
    await deliver(store, ingestor, "email", inbound("e1", "hello", kind=E, address="zelda@example.com", sender_name="Zelda Q"))
    await deliver(store, ingestor, "phone", inbound("p1", "call me", kind=P, address="+79995550011", sender_name="Zelda"))
    a, b, c = (
        await customer_of(store, T, "11"),
        await customer_of(store, E, "zelda@example.com"),
        await customer_of(store, P, "+79995550011"),
    )
    await store.update_customer(a, "alice", note="zelda's secret note", attributes={"passport": "qx4510 123456"})
    await store.merge_customers(b, a, "alice", "zelda@example.com wrote the same")
    await store.merge_customers(c, b, "alice", "same Zelda")
    # Someone else shares Zelda's number: the conflict event is filed under them.
    await deliver(
        store,
        ingestor,
        "telegram",
        inbound("t9", "[contact]", address="99", sender_name="Mallory", extra_identities=((P, "+79995550011"),)),
    )
    conversation = (await store.customer_profile(c)).conversations[0].id
    queued = await store.queue_reply(conversation, "Zelda, your order", "alice")

    await store.erase_customer(c, "alice")

    def state(conn):
        return (
            conn.execute("SELECT state, error FROM messages WHERE id = ?", (queued,)).fetchone(),
            conn.execute("SELECT COUNT(*) FROM customers WHERE erased_at IS NOT NULL").fetchone()[0],
            "\n".join(
                str(tuple(r))
                for t in ("customers", "identities", "messages", "events", "merges", "merge_suggestions", "conversations")
                for r in conn.execute(f"SELECT * FROM {t}")
            ),
        )

    (outbox_state, erased, dump) = await store.db.run(state)
    assert tuple(outbox_state) == ("failed", "the customer was erased")  # the outbox does not spin on it
    assert erased == 3  # A, merged into B, merged into C
    for secret in ("zzyzx", "qx4510", "Zelda", "zelda", "79995550011", "secret note"):
        assert secret not in dump, secret
        assert secret.encode() not in _raw_database_text(store.path), secret
    assert (await store.search("zzyzx")).messages == ()


async def test_merging_then_erasing_customers_with_timeline_lines_keeps_the_search_index_whole(store, tmp_path):
    """Timeline lines ("alice resolved") are not in the message index. Merging and erasing once
    asked the index to delete them too, which corrupted it ("database disk image is
    malformed"); both must now go through and leave a sound database and index."""
    ingestor = Ingestor(store, tmp_path, "RU")
    await deliver(store, ingestor, "telegram", inbound("t1", "where is my parcel", address="21", sender_name="Yana Pod"))
    await deliver(
        store, ingestor, "email", inbound("e1", "parcel 77 again", kind=E, address="yana@example.com", sender_name="Y P")
    )
    a, b = await customer_of(store, T, "21"), await customer_of(store, E, "yana@example.com")
    first = (await store.customer_profile(a)).conversations[0].id
    await store.add_operator("alice", "Alice", OperatorRole.ADMIN)
    await store.assign(first, "alice", "alice")  # timeline lines in both conversations
    await store.set_status(first, ConversationStatus.RESOLVED, "alice")
    await store.add_note((await store.customer_profile(b)).conversations[0].id, "checked the parcel", "alice")
    await store.merge_customers(b, a, "alice", "same parcel")

    def integrity(conn):
        return conn.execute("PRAGMA integrity_check").fetchone()[0]

    assert len((await store.search("parcel")).messages) == 3  # two messages and the note
    await store.erase_customer(b, "alice")
    assert await store.db.run(integrity) == "ok"
    assert (await store.search("parcel")).messages == ()
    assert (await store.search("checked")).messages == ()
