"""One logged-in IMAP connection (aioimaplib) for the e-mail channel, and the small pieces of
IMAP it needs: modified UTF-7 folder names (RFC 3501 5.1.3), UID sets, SEARCH answers, and
library or network failures turned into the connector taxonomy (`TransientError` /
`PermanentError`, connectors/base.py).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aioimaplib import aioimaplib

from connectors.base import ConnectorError, PermanentError, TransientError, raise_if_cancelled
from connectors.mail.settings import MailboxSettings, refuse_plain, tls_error

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_UID = re.compile(rb"UID (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]{1,40})"')


def _internal_date(line: bytes) -> datetime | None:
    """The INTERNALDATE of a FETCH answer line ("17-Jul-1996 02:44:25 -0700"), or None."""
    found = _INTERNALDATE.search(line)
    if found is None:
        return None
    try:
        return datetime.strptime(found.group(1).decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z")
    except (UnicodeDecodeError, ValueError):
        return None


def imap_utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3): "Отправленные" becomes
    "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"."""
    import base64

    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii").rstrip("=")
            out.append("&" + encoded.replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def _mailbox_argument(folder: str) -> str:
    return aioimaplib.quoted(imap_utf7(folder))


def uid_set(uids: Sequence[int]) -> str:
    """`1:5,8,10:12` for a sorted list of UIDs: short commands even for thousands of UIDs."""
    ranges: list[str] = []
    start = previous = uids[0]
    for uid in uids[1:]:
        if uid == previous + 1:
            previous = uid
            continue
        ranges.append(f"{start}:{previous}" if previous != start else str(start))
        start = previous = uid
    ranges.append(f"{start}:{previous}" if previous != start else str(start))
    return ",".join(ranges)


class ImapSession:
    """One logged-in IMAP connection, with errors turned into the connector taxonomy."""

    def __init__(self, settings: MailboxSettings, ssl_context: ssl.SSLContext | None, timeout: float):
        self.settings = settings
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.client: aioimaplib.IMAP4 | None = None
        self.lost: Exception | None = None
        self.selected: str | None = None

    @property
    def where(self) -> str:
        return f"{self.settings.imap_host}:{self.settings.imap_port}"

    def _connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("the server closed the connection")
        if self.client is not None:
            # Wake an IDLE wait at once instead of at its timeout.
            self.client.protocol.idle_queue.put_nowait([b"connection lost"])

    async def open(self) -> None:
        s = self.settings
        refuse_plain("imap", s.imap_host, s.imap_security)
        if s.imap_security == "tls":
            self.client = aioimaplib.IMAP4_SSL(s.imap_host, s.imap_port, timeout=self.timeout, ssl_context=self.ssl_context)
            self.client.protocol.conn_lost_cb = self._connection_lost
        else:
            self.client = aioimaplib.IMAP4(s.imap_host, s.imap_port, timeout=self.timeout, conn_lost_cb=self._connection_lost)
        await self.client.wait_hello_from_server()
        if s.imap_security == "starttls":
            await self._starttls()
        response = await self.client.login(s.imap_user, s.imap_password)
        if response.result != "OK":
            text = _response_text(response)
            if "UNAVAILABLE" in text.upper() or "TRY AGAIN" in text.upper():
                raise TransientError(f"the mail server {self.where} cannot log in {s.imap_user} right now: {text}")
            raise PermanentError(f"the mail server refused the login for {s.imap_user}: {text}")

    async def _starttls(self) -> None:
        # aioimaplib 2.0 has no STARTTLS: send the command, then upgrade the transport in
        # place and ask for the capabilities again (they change after TLS, RFC 3501 6.2.1).
        assert self.client is not None
        protocol = self.client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise PermanentError(f'the mail server {self.where} does not offer STARTTLS; use imap_security = "tls" (port 993)')
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        async with asyncio.timeout(self.timeout):
            response = await protocol.execute(command)
        if response.result != "OK":
            raise PermanentError(f"the mail server {self.where} refused STARTTLS: {_response_text(response)}")
        # Whatever came after the OK came in the clear, where anyone on the path could have put
        # it (STARTTLS injection): drop it, or it would be read as the first words over TLS.
        protocol.incomplete_line = b""
        loop = asyncio.get_running_loop()
        context = self.ssl_context or ssl.create_default_context()
        protocol.transport = await loop.start_tls(protocol.transport, protocol, context, server_hostname=self.settings.imap_host)
        async with asyncio.timeout(self.timeout):
            await protocol.capability()

    async def select(self, folder: str) -> int:
        """SELECT `folder` and return its UIDVALIDITY."""
        assert self.client is not None
        response = await self.client.select(_mailbox_argument(folder))
        if response.result != "OK":
            raise PermanentError(
                f"the mail server has no folder {folder!r} for {self.settings.imap_user}: {_response_text(response)}"
            )
        self.selected = folder
        for line in response.lines:
            if isinstance(line, bytes | bytearray):
                found = _UIDVALIDITY.search(bytes(line))
                if found:
                    return int(found.group(1))
        raise TransientError(f"the mail server did not say the UIDVALIDITY of {folder!r}")

    async def uids_after(self, last_uid: int) -> list[int]:
        assert self.client is not None
        response = await self.client.uid_search(f"UID {last_uid + 1}:*", charset=None)
        _expect_ok(response, "UID SEARCH")
        # "n:*" always matches the highest UID, even when it is below n.
        return sorted(uid for uid in _search_uids(response) if uid > last_uid)

    async def fetch(self, uids: Sequence[int]) -> list[tuple[int, bytes, datetime | None]]:
        """(UID, raw bytes, INTERNALDATE) of each message, by UID; PEEK leaves the \\Seen flag
        to people. INTERNALDATE (RFC 3501 2.3.3) is when the server stored the mail: the date
        of a mail whose headers carry none."""
        assert self.client is not None
        response = await self.client.uid("fetch", uid_set(uids), "(UID INTERNALDATE BODY.PEEK[])")
        _expect_ok(response, "UID FETCH")
        found: list[tuple[int, bytes, datetime | None]] = []
        lines = response.lines
        for index, line in enumerate(lines):
            # aioimaplib hands a literal as a bytearray right after its "N FETCH (... {size}" line;
            # a server may send UID and INTERNALDATE before the literal or after it.
            if isinstance(line, bytearray) and index > 0:
                around = bytes(lines[index - 1])
                if index + 1 < len(lines) and isinstance(lines[index + 1], bytes | bytearray):
                    around += b" " + bytes(lines[index + 1])
                match = _FETCH_UID.search(around)
                if match:
                    found.append((int(match.group(1)), bytes(line), _internal_date(around)))
        return sorted(found, key=lambda item: item[0])

    async def idle_until_new_mail(self, folder: str, seconds: float) -> bool:
        """IDLE on `folder` until the server reports new mail (True) or `seconds` pass."""
        assert self.client is not None
        if self.selected != folder:
            await self.select(folder)
        idle = await self.client.idle_start(timeout=seconds)
        woke = False
        try:
            while True:
                raise_if_cancelled()
                try:
                    pushed = await self.client.wait_server_push(timeout=seconds + 30)
                except TimeoutError:
                    raise TransientError(f"the mail server {self.where} went silent during IDLE") from None
                if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                if self.lost is not None:
                    raise TransientError(f"lost the connection to {self.where}: {self.lost}")
                if any(isinstance(line, bytes | bytearray) and line.endswith(b"EXISTS") for line in pushed):
                    woke = True
                    break
        finally:
            if self.lost is None and self.client.has_pending_idle():
                self.client.idle_done()
        try:
            async with asyncio.timeout(self.timeout):
                await idle
        except TimeoutError:
            raise TransientError(f"the mail server {self.where} did not end IDLE") from None
        return woke

    async def noop(self) -> None:
        assert self.client is not None
        _expect_ok(await self.client.noop(), "NOOP")

    async def append(self, raw: bytes, folder: str, message_id: str) -> bool:
        """APPEND `raw` to `folder` unless a mail with `message_id` is already there (a retry)."""
        assert self.client is not None
        await self.select(folder)
        response = await self.client.uid_search("HEADER", "Message-ID", aioimaplib.quoted(message_id), charset=None)
        if response.result == "OK" and _search_uids(response):
            return False
        response = await self.client.append(raw, mailbox=_mailbox_argument(folder), flags=r"(\Seen)", date=datetime.now(UTC))
        _expect_ok(response, f"APPEND to {folder!r}")
        return True

    def capabilities(self) -> set[str]:
        assert self.client is not None
        return set(self.client.protocol.capabilities)

    async def close(self) -> None:
        """Log out politely when the connection still works; drop it either way."""
        client, self.client = self.client, None
        if client is None:
            return
        if client._idle_waiter is not None:
            client._idle_waiter.cancel()
        try:
            if (
                self.lost is None
                and client.get_state() in {aioimaplib.AUTH, aioimaplib.SELECTED}
                and not client.has_pending_idle()
            ):
                async with asyncio.timeout(2):
                    await client.logout()
        except Exception:  # noqa: BLE001 - the connection is going away anyway
            pass
        finally:
            transport = client.protocol.transport
            if transport is not None:
                transport.close()


def _response_text(response: Any) -> str:
    parts = [bytes(line).decode("utf-8", "replace") for line in response.lines if isinstance(line, bytes | bytearray)]
    return " ".join(" ".join(parts).split())[:300] or response.result


def _search_uids(response: Any) -> set[int]:
    """The UIDs of a SEARCH answer. aioimaplib strips the "SEARCH" word from the untagged
    line; the last line is the tagged completion text."""
    uids: set[int] = set()
    for line in response.lines[:-1]:
        if not isinstance(line, bytes | bytearray):
            continue
        tokens = bytes(line).split()
        if tokens and tokens[0].upper() == b"SEARCH":
            tokens = tokens[1:]
        if tokens and all(token.isdigit() for token in tokens):
            uids.update(int(token) for token in tokens)
    return uids


def _expect_ok(response: Any, what: str) -> None:
    if response.result != "OK":
        raise TransientError(f"the mail server answered {what} with {response.result}: {_response_text(response)}")


def imap_error(exc: BaseException, where: str, host: str) -> ConnectorError:
    """A library or network failure as a ConnectorError an operator can read."""
    if isinstance(exc, ConnectorError):
        return exc
    tls = tls_error(exc, where, host, "imap")
    if tls is not None:
        return tls
    if isinstance(exc, ConnectionRefusedError):
        return TransientError(f"{where} refused the connection (is the mail server running, is the port right?)")
    if isinstance(exc, TimeoutError | aioimaplib.CommandTimeout):
        return TransientError(f"{where} did not answer in time")
    if isinstance(exc, OSError):
        return TransientError(f"cannot reach {where}: {exc.strerror or exc}")
    return TransientError(f"lost the connection to {where}: {type(exc).__name__}: {exc}")
