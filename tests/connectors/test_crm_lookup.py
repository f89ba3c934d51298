"""The `[crm]` lookup for the customer card (issue #22) against a CRM on 127.0.0.1
(tests/peers/crm.py): a record found and mapped, not found, a timeout, malformed and huge
JSON, the cache, and hostile values."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from omniconsole.config import parse_settings
from omniconsole.errors import UsageError
from omniconsole.integrations.crm import FOUND, NOT_FOUND, UNAVAILABLE, CrmLookup
from tests.peers.crm import crm_peer

RECORD = {
    "data": {
        "id": 4711,
        "name": "Anna Petrova",
        "manager": {"name": "Oleg"},
        "deals": [{"title": "Sofa", "amount": 52000}, {"title": "Lamp", "amount": 3000}],
        "vip": True,
    }
}


def crm_settings(base: str, tmp_path: Path, **more):
    token = tmp_path / "crm-token"
    token.write_text("tok-123\n", encoding="utf-8")
    os.chmod(token, 0o600)
    table = {
        "url_crm": f"{base}/lookup/crm/{{value}}",
        "url_email": f"{base}/lookup/email/{{value}}",
        "url_phone": f"{base}/lookup/phone/{{value}}",
        "fields": {"Manager": "data.manager.name", "Deals": "data.deals[*].title", "VIP": "data.vip"},
        "id_field": "data.id",
        "record_url": "https://crm.example.com/contacts/{id}",
        "token_file": str(token),
        "timeout": 0.5,
        **more,
    }
    return parse_settings({"crm": table}, tmp_path / "omniconsole.toml").crm


async def test_a_record_is_found_by_email_mapped_and_cached(tmp_path: Path) -> None:
    async with crm_peer() as crm:
        crm.lookups["anna%40example.com"] = (200, json.dumps(RECORD).encode(), 0)
        crm.lookups["anna@example.com"] = (200, json.dumps(RECORD).encode(), 0)
        lookup = CrmLookup(crm_settings(crm.url, tmp_path))
        try:
            record = await lookup.lookup(1, [("telegram", "555"), ("email", "anna@example.com")])
            assert record.status == FOUND
            assert record.fields == (("Manager", "Oleg"), ("Deals", "Sofa, Lamp"), ("VIP", "yes"))
            assert record.url == "https://crm.example.com/contacts/4711"
            assert crm.lookup_requests[0].headers["Authorization"] == "Bearer tok-123"
            again = await lookup.lookup(1, [("email", "anna@example.com")])
            assert again is record and len(crm.lookup_requests) == 1  # from the cache
        finally:
            await lookup.close()


async def test_the_crm_id_goes_first_and_a_miss_falls_through_to_the_phone(tmp_path: Path) -> None:
    async with crm_peer() as crm:
        crm.lookups["%2B79991234567"] = (200, json.dumps(RECORD).encode(), 0)
        crm.lookups["+79991234567"] = (200, json.dumps(RECORD).encode(), 0)
        lookup = CrmLookup(crm_settings(crm.url, tmp_path))
        try:
            record = await lookup.lookup(2, [("whatsapp", "+79991234567"), ("crm", "C-404")])
            assert record.status == FOUND
            assert [r for r in crm.lookup_requests] and len(crm.lookup_requests) == 2  # crm id first (404), then phone
            nobody = await lookup.lookup(3, [("email", "nobody@example.com")])
            assert nobody.status == NOT_FOUND and nobody.fields == ()
        finally:
            await lookup.close()


@pytest.mark.parametrize(
    "answer, reason",
    [
        ((200, b'{"data": {"id": 1,', 0), "not JSON"),
        ((200, b"<html>502 Bad Gateway</html>", 0), "not JSON"),
        ((200, json.dumps({"data": {"notes": "x" * 3_000_000}}).encode(), 0), "larger than 1024 KB"),
        ((200, b"[" * 100_000 + b"]" * 100_000, 0), "not JSON"),
        ((503, b"{}", 0), "HTTP 503"),
        ((200, json.dumps(RECORD).encode(), 5.0), "did not answer within 0.5 s"),
    ],
)
async def test_a_broken_slow_or_huge_answer_is_unavailable_in_words(tmp_path: Path, answer, reason: str) -> None:
    async with crm_peer() as crm:
        crm.lookups["anna%40example.com"] = answer
        crm.lookups["anna@example.com"] = answer
        lookup = CrmLookup(crm_settings(crm.url, tmp_path))
        try:
            record = await lookup.lookup(1, [("email", "anna@example.com")])
        finally:
            await lookup.close()
    assert record.status == UNAVAILABLE and reason in record.reason


async def test_a_dead_crm_is_unavailable(tmp_path: Path) -> None:
    async with crm_peer() as crm:
        base = crm.url
    lookup = CrmLookup(crm_settings(base, tmp_path))
    try:
        record = await lookup.lookup(1, [("email", "anna@example.com")])
    finally:
        await lookup.close()
    assert record.status == UNAVAILABLE and "unreachable" in record.reason


async def test_hostile_values_are_sanitised_and_cut(tmp_path: Path) -> None:
    hostile = {
        "data": {"id": "a/b", "manager": {"name": "\x1b]52;c;ZWNobw==\x07Oleg[/]\x1b[31m"}, "deals": [{"title": "y" * 1000}]}
    }
    async with crm_peer() as crm:
        crm.lookups["anna%40example.com"] = (200, json.dumps(hostile).encode(), 0)
        crm.lookups["anna@example.com"] = (200, json.dumps(hostile).encode(), 0)
        lookup = CrmLookup(crm_settings(crm.url, tmp_path))
        try:
            record = await lookup.lookup(1, [("email", "anna@example.com")])
        finally:
            await lookup.close()
    fields = dict(record.fields)
    assert "\x1b" not in fields["Manager"] and "\x07" not in fields["Manager"] and "Oleg[/]" in fields["Manager"]
    assert len(fields["Deals"]) == 300
    assert record.url == "https://crm.example.com/contacts/a%2Fb"


@pytest.mark.parametrize(
    "table, problem",
    [
        ({}, None),
        ({"fields": {"x": "a"}}, "give at least one of url_crm, url_email, url_phone"),
        ({"url_email": "https://crm/x"}, "must be an http(s) URL with {value}"),
        ({"url_email": "https://crm/{value}", "fields": {"Deals": "data.deals[*"}}, "is not a JMESPath expression"),
        ({"url_email": "https://crm/{value}", "record_url": "https://crm/contacts"}, "record_url must be a URL with {id}"),
    ],
)
def test_a_bad_crm_table_is_refused_in_words(tmp_path: Path, table: dict, problem: str | None) -> None:
    if problem is None:
        assert parse_settings({"crm": table}, tmp_path / "omniconsole.toml").crm is None
        return
    with pytest.raises(UsageError, match=re.escape(problem)):
        parse_settings({"crm": table}, tmp_path / "omniconsole.toml")
