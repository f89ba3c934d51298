"""The CRM's record of a customer, for their card (issue #22, `[crm]` in the config).

    crm = CrmLookup(settings.crm)
    record = await crm.lookup(profile.identities_as_pairs)   # never raises; never waits past `timeout`

The customer's identities are tried in the order `crm` (the CRM's own id, an identity of kind
`crm`), `email`, `phone`, each by its URL template; the first answer that is a JSON record wins.
Fields are JMESPath expressions over that JSON (https://jmespath.org). A result (found, not
found or unavailable) is cached per customer for `cache_ttl` seconds; "unavailable" only for a
tenth of it, so a CRM that comes back is seen soon. A slow, dead or garbled CRM gives
`CrmRecord(status="unavailable", why=...)` (its `reason` in words) within `timeout`: the card says so and the window
never waits for it (the caller runs this in a worker).

Everything the CRM sends is remote text: values are sanitised (control and escape sequences
dropped) and cut to `MAX_VALUE` characters; the window draws them as `Text`, never markup.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from omniconsole.config import CrmSettings
from omniconsole.i18n import N_, phrase, render

if TYPE_CHECKING:
    import httpx
from omniconsole.models import sanitize_text

FOUND, NOT_FOUND, UNAVAILABLE = "found", "not found", "unavailable"
#: The longest value shown for one field (characters); a list is joined with ", " first.
MAX_VALUE = 300
_ORDER = ("crm", "email", "phone")


@dataclass(frozen=True)
class CrmRecord:
    """What the card shows: `status` (found, not found, unavailable), the mapped `fields` as
    (label, text) pairs, the `url` to open the record in the CRM, and `reason` in words when
    it is unavailable (kept as the phrase `why`, so a cached record reads in the language of
    the moment it is drawn). `fetched_at` is epoch seconds."""

    status: str
    fields: tuple[tuple[str, str], ...] = ()
    url: str = ""
    why: dict | None = None
    fetched_at: float = field(default_factory=time.time)

    @property
    def reason(self) -> str:
        """Why there is no record, in the current language ("" when there is nothing to say)."""
        return render(self.why) if self.why else ""


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = ", ".join(_text(v) for v in value if v is not None)
    elif isinstance(value, (dict,)):
        value = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, bool):
        value = "yes" if value else "no"
    text = sanitize_text(str(value)).replace("\n", " ")
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


class CrmLookup:
    """Looks customers up in one CRM, with a per-process cache; one per window."""

    def __init__(self, settings: CrmSettings, *, client: httpx.AsyncClient | None = None):
        # Imported here, not at the top: the window imports this module at start, and httpx
        # and jmespath are only needed once a CRM is configured (they cost ~30 ms of start).
        import jmespath

        self.settings = settings
        self._client = client
        self._fields = {label: jmespath.compile(expr) for label, expr in settings.fields.items()}
        self._id = jmespath.compile(settings.id_field)
        self._cache: dict[int, tuple[float, CrmRecord]] = {}

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def cached(self, customer_id: int, now: float | None = None) -> CrmRecord | None:
        """The cached record of a customer while it is fresh, else None."""
        entry = self._cache.get(customer_id)
        if entry is None or entry[0] < (now or time.time()):
            return None
        return entry[1]

    async def lookup(self, customer_id: int, identities: Iterable[tuple[str, str]], now: float | None = None) -> CrmRecord:
        """The CRM's record for a customer known by `identities` ((kind, address) pairs);
        from the cache while fresh. Never raises for the CRM's faults, never takes longer than
        about `timeout` seconds per identity tried."""
        now = now or time.time()
        hit = self.cached(customer_id, now)
        if hit is not None:
            return hit
        record = await self._fetch(list(identities))
        ttl = self.settings.cache_ttl / 10 if record.status == UNAVAILABLE else self.settings.cache_ttl
        self._cache[customer_id] = (now + ttl, record)
        return record

    async def _fetch(self, identities: list[tuple[str, str]]) -> CrmRecord:
        tried = False
        for kind in _ORDER:
            template = self.settings.urls.get(kind)
            if template is None:
                continue
            for own_kind, address in identities:
                if own_kind != kind and not (kind == "phone" and own_kind == "whatsapp"):
                    continue
                tried = True
                url = template.replace("{value}", quote(address, safe=""))
                record = await self._one(url)
                if record.status != NOT_FOUND:
                    return record
        if not tried:
            return CrmRecord(NOT_FOUND, why=phrase(N_("the customer has no identity the CRM is looked up by")))
        return CrmRecord(NOT_FOUND)

    async def _one(self, url: str) -> CrmRecord:
        where = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
        try:
            async with asyncio.timeout(self.settings.timeout):
                return await self._get(url, where)
        except TimeoutError:
            return CrmRecord(
                UNAVAILABLE,
                why=phrase(
                    N_("the CRM at {where} did not answer within {seconds} s"), where=where, seconds=f"{self.settings.timeout:g}"
                ),
            )

    async def _get(self, url: str, where: str) -> CrmRecord:
        import httpx
        from jmespath.exceptions import JMESPathError

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.settings.timeout), follow_redirects=False)
        headers = {"Accept": "application/json", "User-Agent": "omniconsole"}
        if self.settings.token:
            headers["Authorization"] = f"Bearer {self.settings.token}"
        limit = self.settings.max_kb * 1024
        try:
            async with self._client.stream("GET", url, headers=headers) as response:
                if response.status_code == 404:
                    return CrmRecord(NOT_FOUND)
                if response.status_code != 200:
                    return CrmRecord(
                        UNAVAILABLE,
                        why=phrase(N_("the CRM at {where} answered HTTP {status}"), where=where, status=response.status_code),
                    )
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        return CrmRecord(
                            UNAVAILABLE,
                            why=phrase(N_("the CRM's answer is larger than {kb} KB; not read"), kb=self.settings.max_kb),
                        )
        except httpx.HTTPError as exc:
            return CrmRecord(
                UNAVAILABLE, why=phrase(N_("the CRM at {where} is unreachable: {error}"), where=where, error=type(exc).__name__)
            )
        try:
            document = json.loads(bytes(body))
        except (ValueError, RecursionError):
            return CrmRecord(UNAVAILABLE, why=phrase(N_("the CRM's answer is not JSON")))
        if document is None or document == [] or document == {}:
            return CrmRecord(NOT_FOUND)
        try:
            fields = tuple((label, _text(expr.search(document))) for label, expr in self._fields.items())
            record_id = self._id.search(document)
        except (JMESPathError, TypeError, ValueError, RecursionError) as exc:
            return CrmRecord(
                UNAVAILABLE, why=phrase(N_("the CRM's answer does not fit the field mapping: {error}"), error=str(exc))
            )
        link = ""
        if self.settings.record_url and isinstance(record_id, (str, int)) and not isinstance(record_id, bool):
            link = self.settings.record_url.replace("{id}", quote(str(record_id), safe=""))
        return CrmRecord(FOUND, fields=tuple((label, value) for label, value in fields if value), url=link)
