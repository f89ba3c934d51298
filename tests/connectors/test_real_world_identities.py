"""Identities from real-world inputs (../shared/cases/real-world, copied to tests/fixtures),
fed through a real core: the PBX posts call events to the telephony route of the real
listener, Meta posts signed webhooks to the WhatsApp route, and the contacts import runs as
the command line runs it.

- 10: a PBX caller id with the country code but no `+`, then WhatsApp from the same number:
  one customer, whose phone is `+998901234567`.
- 15: two colleagues behind one office number with extensions: two customers; a call from
  the bare office number matches neither silently but is a suggestion for each, in words.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.models import OperatorRole
from omniconsole.store import Store
from tests.peers.graph_api import WABA_ID, FakeGraphApi, Meta
from tests.rig import free_port, running_core
from tests.unit.test_cli import omniconsole

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "real_world"
PBX_TOKEN = "pbx-token-case-10"


class Pbx:
    """The PBX's side: posts call events with its bearer token."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def post(self, event: dict[str, Any]) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(self.url, json=event, headers={"Authorization": f"Bearer {PBX_TOKEN}"})
        assert answer.status_code == 202, answer.text
        return answer.json()


@contextlib.asynccontextmanager
async def core_with_phone_and_whatsapp(tmp_path: Path) -> AsyncIterator[tuple[Store, Pbx, Meta]]:
    """A real core with a telephony channel and a WhatsApp channel (its Graph API on 127.0.0.1)."""
    port = free_port()
    with FakeGraphApi() as graph:
        from tests.connectors.test_whatsapp import settings_for

        settings = Settings(
            database=tmp_path / "core.db",
            data_dir=tmp_path / "data",
            default_region="RU",
            channels=[
                ChannelSettings("telephony", "Phone", {"token": PBX_TOKEN}),
                ChannelSettings("whatsapp", "WhatsApp", settings_for(graph)),
            ],
            listener=ListenerSettings(port=port),
        )
        store = await Store.open(settings.database)
        meta = Meta(f"http://127.0.0.1:{port}/hooks/whatsapp")
        try:
            async with running_core(settings, store, until_up="all"):
                yield store, Pbx(f"http://127.0.0.1:{port}/hooks/phone/events"), meta
        finally:
            await meta.close()
            await store.close()


def whatsapp_webhook(value: dict[str, Any], meta: Meta) -> dict[str, Any]:
    """A webhook `value` (contacts and messages, as the case gives them) in Meta's envelope."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100199", "phone_number_id": meta.phone_number_id},
        **value,
    }
    return {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}]}


async def identities_of(store: Store, customer_id: int) -> set[tuple[str, str]]:
    return {(i.kind, i.address) for i in (await store.customer_profile(customer_id)).identities}


async def test_case_10_a_caller_id_without_plus_and_whatsapp_are_one_customer(tmp_path: Path) -> None:
    case = json.loads((FIXTURES / "10-pbx-caller-id-without-plus" / "events.json").read_text())
    async with core_with_phone_and_whatsapp(tmp_path) as (store, pbx, meta):
        call = await pbx.post(case["call"])
        answer = await meta.post(whatsapp_webhook(case["whatsapp"], meta))
        assert answer.status_code == 200, answer.text
        stats = await store.stats()
        assert stats["customers"] == 1
        assert await identities_of(store, call["customer_id"]) == {("phone", "+998901234567"), ("whatsapp", "+998901234567")}
        # The message joined the call's conversation: one person, one history.
        entries = await store.timeline(call["conversation_id"])
        assert [e.body for e in entries if e.direction == "in"] == ["I tried to call you about my order"]


async def test_case_10_the_other_order_and_other_spellings_of_the_number(tmp_path: Path) -> None:
    """WhatsApp first, then the PBX's caller id in the international-prefix form (00...)."""
    case = json.loads((FIXTURES / "10-pbx-caller-id-without-plus" / "events.json").read_text())
    async with core_with_phone_and_whatsapp(tmp_path) as (store, pbx, meta):
        assert (await meta.post(whatsapp_webhook(case["whatsapp"], meta))).status_code == 200
        for n, spelling in enumerate(("00998901234567", "998 90 123 45 67", "+998 (90) 123-45-67")):
            call = await pbx.post({**case["call"], "call_id": f"c10-{n}", "from": spelling})
            assert await identities_of(store, call["customer_id"]) == {("phone", "+998901234567"), ("whatsapp", "+998901234567")}
        assert (await store.stats())["customers"] == 1


def _import_contacts(tmp_path: Path, db: Path, csv: Path) -> dict[str, Any]:
    result = omniconsole("import", "contacts", str(csv), "--db", str(db), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.splitlines()[-1])


async def _admin(db: Path) -> None:
    store = await Store.open(db)
    try:
        await store.add_operator(getpass.getuser(), role=OperatorRole.ADMIN)
    finally:
        await store.close()


async def test_case_15_colleagues_behind_one_office_number_stay_two_and_the_bare_number_is_a_suggestion(tmp_path: Path) -> None:
    db = tmp_path / "core.db"
    await _admin(db)
    summary = await asyncio.to_thread(
        _import_contacts, tmp_path, db, FIXTURES / "15-crm-phone-extensions-merge" / "crm-export.csv"
    )
    assert (summary["new"], summary["written"], summary["matched"]) == (2, 2, 0)

    def people(conn):
        return conn.execute(
            "SELECT c.id, c.display_name, i.address FROM customers c JOIN identities i ON i.customer_id = c.id"
            " WHERE i.kind = 'phone' ORDER BY i.address"
        ).fetchall()

    async with core_with_phone_and_whatsapp(tmp_path) as (store, pbx, meta):
        (ivan, ivan_name, ivan_phone), (maria, maria_name, maria_phone) = await store.db.run(people)
        assert (ivan_name, ivan_phone) == ("Иван Пробный", "+74951234567;ext=101")
        assert (maria_name, maria_phone) == ("Мария Тестова", "+74951234567;ext=102")
        assert await identities_of(store, ivan) == {("email", "ivan.probny@firm.example"), ("phone", "+74951234567;ext=101")}

        # A call from the office's line: whose is it? Neither silently.
        call = await pbx.post(
            {"event": "missed", "call_id": "c15-1", "direction": "in", "from": "+7 (495) 123-45-67", "at": "2026-11-23T10:00:00Z"}
        )
        office = call["customer_id"]
        assert office not in (ivan, maria)
        assert await identities_of(store, office) == {("phone", "+74951234567")}
        suggestions = (await store.customer_profile(office)).suggestions
        assert sorted((s.other_id, s.reason) for s in suggestions) == [
            (
                ivan,
                "one office number +74951234567: «+7 (495) 123-45-67» has it without an extension, «Иван Пробный» with extension 101",
            ),
            (
                maria,
                "one office number +74951234567: «+7 (495) 123-45-67» has it without an extension, «Мария Тестова» with extension 102",
            ),
        ]
        # Each colleague's card shows it too; the two colleagues are not suggested to each other.
        assert [s.other_id for s in (await store.customer_profile(ivan)).suggestions] == [office]
        assert [s.other_id for s in (await store.customer_profile(maria)).suggestions] == [office]
        # A second call from the line is the same (bare-number) customer, and suggests nothing new.
        again = await pbx.post(
            {"event": "missed", "call_id": "c15-2", "direction": "in", "from": "74951234567", "at": "2026-11-23T11:00:00Z"}
        )
        assert again["customer_id"] == office
        assert len((await store.customer_profile(office)).suggestions) == 2
        # Searching the number finds all three, however it is typed.
        for typed in ("+7 (495) 123-45-67", "74951234567", "+74951234567;ext=101"):
            found = {c.customer_id for c in (await store.search(typed)).customers}
            assert {ivan, maria} <= found if typed != "+74951234567;ext=101" else ivan in found, (typed, found)
