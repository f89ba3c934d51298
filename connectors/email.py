"""The e-mail channel: one mailbox, IMAP in (aioimaplib), SMTP out (aiosmtplib).

Receiving: log in, and for each configured folder SELECT it, read its UIDVALIDITY and fetch
every message above the cursor's last UID in batches; each batch goes to the core together
with the cursor that covers it (`{"FOLDER": {"uidvalidity": V, "uid": LAST}}`, JSON), so a
crash replays at most the batch in flight. Then wait: IMAP IDLE on the first folder where
the server has it (re-issued well before the 29 minutes RFC 2177 allows; with several
folders it is cut at `poll_interval` so the others are polled too), plain polling where it
does not.

A message's `external_id` is its Message-ID (a hash of the bytes when it has none), never its
UID: when a server renumbers a folder (a new UIDVALIDITY) the folder is read again from the
start and every mail already stored is recognised by its Message-ID, so nothing doubles.

Sending builds the mail with a Message-ID fixed by our message id and the channel, so a retry
after a crash is recognisably the same mail, threads it with In-Reply-To/References and
"Re: subject", and optionally files a copy in the Sent folder (IMAP APPEND).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import mimetypes
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar

import aiosmtplib
from aioimaplib import aioimaplib

from connectors.base import (
    ChannelContext,
    Connector,
    ConnectorError,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
)
from connectors.mail_parse import message_key, parse_mail
from omniconsole.models import IdentityKind

SECURITY_MODES = ("tls", "starttls", "plain")
_DEFAULT_IMAP_PORTS = {"tls": 993, "starttls": 143, "plain": 143}
_DEFAULT_SMTP_PORTS = {"tls": 465, "starttls": 587, "plain": 25}
# RFC 2177: servers may drop an IDLE after 30 minutes of silence; stay well inside it.
MAX_IDLE_SECONDS = 29 * 60
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_UID = re.compile(rb"UID (\d+)")


@dataclass(frozen=True)
class MailboxSettings:
    """One mailbox's options from its `[[channels]]` table, with defaults filled in."""

    address: str
    display_name: str
    imap_host: str
    imap_port: int
    imap_security: str
    imap_user: str
    imap_password: str
    folders: tuple[str, ...]
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_user: str
    smtp_password: str
    sent_folder: str
    poll_interval: float
    idle_timeout: float
    tls_ca_path: str

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> MailboxSettings:
        """Validate the options; raises PermanentError with the fix in words."""

        def text(key: str, default: str = "") -> str:
            value = options.get(key, default)
            if value is None:
                return default
            if not isinstance(value, str):
                raise PermanentError(f"e-mail option {key} must be text (got {value!r})")
            return value.strip()

        def security(key: str) -> str:
            value = text(key, "tls").lower()
            if value not in SECURITY_MODES:
                raise PermanentError(f"e-mail option {key} must be one of tls, starttls, plain (got {value!r})")
            return value

        def number(key: str, default: float) -> float:
            value = options.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise PermanentError(f"e-mail option {key} must be a positive number (got {value!r})")
            return float(value)

        address = text("address")
        if "@" not in address:
            raise PermanentError(f"e-mail option address must be the mailbox's address, such as support@example.com (got {address!r})")
        imap_host = text("imap_host")
        if not imap_host:
            raise PermanentError("e-mail option imap_host is missing")
        imap_security = security("imap_security")
        smtp_security = security("smtp_security")
        folders_raw = options.get("folders", ["INBOX"])
        if isinstance(folders_raw, str):
            folders_raw = [folders_raw]
        if not isinstance(folders_raw, list) or not folders_raw or not all(isinstance(f, str) and f.strip() for f in folders_raw):
            raise PermanentError('e-mail option folders must be a list of folder names, such as ["INBOX"]')
        imap_user = text("imap_user", address)
        imap_password = text("imap_password")
        smtp_host = text("smtp_host")
        return cls(
            address=address,
            display_name=text("display_name"),
            imap_host=imap_host,
            imap_port=int(number("imap_port", _DEFAULT_IMAP_PORTS[imap_security])),
            imap_security=imap_security,
            imap_user=imap_user,
            imap_password=imap_password,
            folders=tuple(dict.fromkeys(f.strip() for f in folders_raw)),
            smtp_host=smtp_host,
            smtp_port=int(number("smtp_port", _DEFAULT_SMTP_PORTS[smtp_security])),
            smtp_security=smtp_security,
            smtp_user=text("smtp_user", imap_user),
            smtp_password=text("smtp_password", imap_password),
            sent_folder=text("sent_folder"),
            poll_interval=number("poll_interval", 60),
            idle_timeout=min(number("idle_timeout", 25 * 60), MAX_IDLE_SECONDS),
            tls_ca_path=text("tls_ca_path"),
        )


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: the only hosts we talk to without TLS."""
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _refuse_plain(protocol: str, host: str, security: str) -> None:
    if security == "plain" and not is_loopback(host):
        raise PermanentError(
            f'{protocol}_security = "plain" would send the password unencrypted to {host}; plain is allowed only '
            f'for a server on this machine (127.0.0.1). Use "tls" or "starttls".'
        )


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


def reply_subject(subject: str) -> str:
    """"Re: subject", without piling up prefixes when the subject already has one."""
    subject = " ".join((subject or "").split())
    if re.match(r"(?i)^(re|aw|sv|ответ)\s*:", subject):
        return subject
    return f"Re: {subject}" if subject else "Re:"


def outbound_message_id(message_id: int, channel_id: int, address: str) -> str:
    """The Message-ID of our outbound message: fixed before sending, so a retry is the same mail."""
    domain = address.rpartition("@")[2].strip().lower() or "omniconsole.invalid"
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = "omniconsole.invalid"
    return f"<omniconsole.{message_id}.{channel_id}@{domain}>"


class _ImapSession:
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
        _refuse_plain("imap", s.imap_host, s.imap_security)
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
        response = await asyncio.wait_for(protocol.execute(command), self.timeout)
        if response.result != "OK":
            raise PermanentError(f"the mail server {self.where} refused STARTTLS: {_response_text(response)}")
        # Whatever came after the OK came in the clear, where anyone on the path could have put
        # it (STARTTLS injection): drop it, or it would be read as the first words over TLS.
        protocol.incomplete_line = b""
        loop = asyncio.get_running_loop()
        context = self.ssl_context or ssl.create_default_context()
        protocol.transport = await loop.start_tls(protocol.transport, protocol, context, server_hostname=self.settings.imap_host)
        await asyncio.wait_for(protocol.capability(), self.timeout)

    async def select(self, folder: str) -> int:
        """SELECT `folder` and return its UIDVALIDITY."""
        assert self.client is not None
        response = await self.client.select(_mailbox_argument(folder))
        if response.result != "OK":
            raise PermanentError(f"the mail server has no folder {folder!r} for {self.settings.imap_user}: {_response_text(response)}")
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

    async def fetch(self, uids: Sequence[int]) -> list[tuple[int, bytes]]:
        """(UID, raw bytes) of each message; PEEK leaves the \\Seen flag to people."""
        assert self.client is not None
        response = await self.client.uid("fetch", uid_set(uids), "(UID BODY.PEEK[])")
        _expect_ok(response, "UID FETCH")
        found: list[tuple[int, bytes]] = []
        lines = response.lines
        for index, line in enumerate(lines):
            # aioimaplib hands a literal as a bytearray right after its "N FETCH (... {size}" line.
            if isinstance(line, bytearray) and index > 0:
                match = _FETCH_UID.search(bytes(lines[index - 1]))
                if not match and index + 1 < len(lines):
                    match = _FETCH_UID.search(bytes(lines[index + 1]))
                if match:
                    found.append((int(match.group(1)), bytes(line)))
        return sorted(found)

    async def idle_until_new_mail(self, folder: str, seconds: float) -> bool:
        """IDLE on `folder` until the server reports new mail (True) or `seconds` pass."""
        assert self.client is not None
        if self.selected != folder:
            await self.select(folder)
        idle = await self.client.idle_start(timeout=seconds)
        woke = False
        try:
            while True:
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
            await asyncio.wait_for(idle, self.timeout)
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
            if self.lost is None and client.get_state() in {aioimaplib.AUTH, aioimaplib.SELECTED} and not client.has_pending_idle():
                await asyncio.wait_for(client.logout(), 2)
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


def _cursor_from(raw: str | None) -> dict[str, dict[str, int]]:
    """The committed cursor, or an empty one when there is none or it is unreadable."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    cursor: dict[str, dict[str, int]] = {}
    for folder, state in data.items():
        if isinstance(state, dict) and isinstance(state.get("uidvalidity"), int) and isinstance(state.get("uid"), int):
            cursor[str(folder)] = {"uidvalidity": state["uidvalidity"], "uid": state["uid"]}
    return cursor


# OpenSSL's verify codes for "the certificate is fine but names another host".
_NAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
# ... and for "nobody we trust signed it", which tls_ca_path is there to answer.
_UNKNOWN_ISSUER = {18, 19, 20, 21}  # self-signed, self-signed in chain, issuer unknown, cannot verify


def _tls_error(exc: BaseException | None, where: str, host: str, protocol: str) -> PermanentError | None:
    """A failed TLS handshake as a PermanentError in words (a retry meets the same certificate
    or the same wrong port), or None when `exc` is something else. The cause chain is searched:
    aiosmtplib wraps a handshake failure on implicit TLS in SMTPConnectError, which would
    otherwise pass for a network fault and be retried for ever."""
    while exc is not None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            detail = exc.verify_message or str(exc)
            if exc.verify_code in _NAME_MISMATCH:
                return PermanentError(
                    f"the certificate of {where} is not for {host} ({detail}); set {protocol}_host to a name the certificate carries"
                )
            hint = (
                "; if the server uses a self-signed or private certificate, set tls_ca_path to that certificate or the CA that signed it"
                if exc.verify_code in _UNKNOWN_ISSUER
                else ""
            )
            return PermanentError(f"the certificate of {where} is not trusted ({detail}){hint}")
        # A connection cut during the handshake (EOF, a socket error) is the network's, not
        # the settings': those stay transient.
        if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError):
            detail = exc.reason.replace("_", " ").lower() if exc.reason else str(exc)
            return PermanentError(f"TLS with {where} failed (are {protocol}_port and {protocol}_security right?): {detail}")
        exc = exc.__cause__
    return None


def _imap_error(exc: BaseException, where: str, host: str) -> ConnectorError:
    """A library or network failure as a ConnectorError an operator can read."""
    if isinstance(exc, ConnectorError):
        return exc
    tls = _tls_error(exc, where, host, "imap")
    if tls is not None:
        return tls
    if isinstance(exc, ConnectionRefusedError):
        return TransientError(f"{where} refused the connection (is the mail server running, is the port right?)")
    if isinstance(exc, TimeoutError | aioimaplib.CommandTimeout):
        return TransientError(f"{where} did not answer in time")
    if isinstance(exc, OSError):
        return TransientError(f"cannot reach {where}: {exc.strerror or exc}")
    return TransientError(f"lost the connection to {where}: {type(exc).__name__}: {exc}")


def _smtp_setup_error(exc: BaseException, where: str, host: str) -> PermanentError | None:
    """The SMTP failures that are the configuration's, not the network's: a certificate we do
    not trust, TLS on the wrong port, or STARTTLS asked of a server that does not offer it
    (aiosmtplib raises a bare SMTPException for that, recognisable only by its words)."""
    tls = _tls_error(exc, where, host, "smtp")
    if tls is not None:
        return tls
    if type(exc) is aiosmtplib.SMTPException and "STARTTLS extension not supported" in str(exc):
        return PermanentError(f'the mail server {where} does not offer STARTTLS; use smtp_security = "tls" (port 465)')
    return None


class EmailConnector(Connector):
    """One mailbox: IMAP in, SMTP out. Two mailboxes are two channels."""

    kind: ClassVar[str] = "email"
    identity_kind: ClassVar[IdentityKind] = IdentityKind.EMAIL

    #: Messages fetched and handed to the core per batch (and per cursor step).
    fetch_batch: int = 200
    #: Seconds to wait for any single IMAP or SMTP exchange.
    network_timeout: float = 30.0

    def __init__(self, context: ChannelContext):
        super().__init__(context)
        try:
            self._settings: MailboxSettings | None = MailboxSettings.from_options(context.settings)
            self._settings_error: PermanentError | None = None
        except PermanentError as exc:
            self._settings, self._settings_error = None, exc
        self._deliver_lock = asyncio.Lock()

    @property
    def settings(self) -> MailboxSettings:
        """The validated options; raises the PermanentError that says what to fix."""
        if self._settings is None:
            assert self._settings_error is not None
            raise self._settings_error
        return self._settings

    def _ssl_context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.settings.tls_ca_path or None)
        except (OSError, ssl.SSLError) as exc:
            raise PermanentError(f"cannot load tls_ca_path {self.settings.tls_ca_path}: {exc}") from None

    def _imap_session(self) -> _ImapSession:
        s = self.settings
        context = self._ssl_context() if s.imap_security != "plain" else None
        return _ImapSession(s, context, self.network_timeout)

    # -- receiving -----------------------------------------------------------------------

    async def run(self, sink: InboundSink) -> None:
        """Receive until cancelled; see the module docstring for the cycle."""
        s = self.settings
        session = self._imap_session()
        try:
            await session.open()
            idle = "IDLE" in session.capabilities()
            plural = "folder" if len(s.folders) == 1 else "folders"
            sink.connected(f"{s.imap_host}, {len(s.folders)} {plural}" + ("" if idle else f", polling every {s.poll_interval:g} s"))
            while True:
                for folder in s.folders:
                    await self._sync_folder(session, folder, sink)
                if idle:
                    # With several folders only the first is watched; cutting IDLE at the
                    # poll interval lets the loop look at the others too.
                    window = s.idle_timeout if len(s.folders) == 1 else min(s.idle_timeout, s.poll_interval)
                    await session.idle_until_new_mail(s.folders[0], window)
                else:
                    await asyncio.sleep(s.poll_interval)
                    await session.noop()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise _imap_error(exc, session.where, session.settings.imap_host) from exc
        finally:
            await session.close()

    async def _sync_folder(self, session: _ImapSession, folder: str, sink: InboundSink) -> None:
        """Hand the core every message of `folder` above the committed cursor, batch by batch."""
        uidvalidity = await session.select(folder)
        state = _cursor_from(sink.cursor).get(folder)
        last_uid = 0
        if state is not None:
            if state["uidvalidity"] == uidvalidity:
                last_uid = state["uid"]
            else:
                self.log.info(
                    "%s: folder %s has a new UIDVALIDITY (%s, was %s); reading it again, stored mail is matched by Message-ID",
                    self.context.name, folder, uidvalidity, state["uidvalidity"],
                )
        uids = await session.uids_after(last_uid)
        if not uids:
            if state is None or state["uidvalidity"] != uidvalidity:
                await self._deliver(sink, folder, [], uidvalidity, last_uid)
            return
        for start in range(0, len(uids), self.fetch_batch):
            chunk = uids[start : start + self.fetch_batch]
            fetched = await session.fetch(chunk)
            messages: dict[str, InboundMessage] = {}
            for uid, raw in fetched:
                key = message_key(raw)
                if key in messages:
                    continue  # the same mail twice in one folder: the first copy is enough
                parsed = parse_mail(raw, external_id=key)
                messages[key] = dataclasses.replace(parsed, meta={**parsed.meta, "folder": folder, "uid": uid})
            # The cursor covers the whole chunk, including UIDs expunged since the SEARCH.
            await self._deliver(sink, folder, list(messages.values()), uidvalidity, chunk[-1])

    async def _deliver(self, sink: InboundSink, folder: str, messages: list[InboundMessage], uidvalidity: int, uid: int) -> None:
        async with self._deliver_lock:
            cursor = _cursor_from(sink.cursor)
            cursor[folder] = {"uidvalidity": uidvalidity, "uid": uid}
            await sink.deliver(messages, cursor=json.dumps(cursor, sort_keys=True, ensure_ascii=False))

    # -- sending -------------------------------------------------------------------------

    def build_mail(self, message: OutboundMessage) -> EmailMessage:
        """The mail for an outbound message: our address and name in From, threading headers
        that make the customer's mail program show it inside their conversation, and a
        Message-ID that is the same on every attempt."""
        s = self.settings
        mail = EmailMessage(policy=policy.SMTP)
        local, _, domain = s.address.rpartition("@")
        mail["From"] = Address(display_name=s.display_name, username=local, domain=domain)
        mail["To"] = message.address
        keys = [key for key in message.reply_to_keys if key]
        if message.thread_key and message.thread_key not in keys:
            keys.insert(0, message.thread_key)
        is_reply = bool(keys)
        mail["Subject"] = reply_subject(message.subject) if is_reply else (message.subject or "")
        mail["Date"] = format_datetime(datetime.now(UTC))
        message_id = outbound_message_id(message.id, self.context.channel_id, s.address)
        mail["Message-ID"] = message_id
        keys = [key for key in keys if key != message_id]
        if keys:
            parent = message.reply_to_keys[-1] if message.reply_to_keys else keys[-1]
            mail["In-Reply-To"] = parent
            # RFC 5322 3.6.4: the parent's References and the parent; long chains keep the
            # root and the newest ones, as mail programs do.
            chain = keys if len(keys) <= 20 else [keys[0], *keys[-19:]]
            mail["References"] = " ".join(chain)
        mail.set_content(message.body or "", cte="quoted-printable" if not (message.body or "").isascii() else "7bit")
        for path in message.attachments:
            path = Path(path)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise PermanentError(f"cannot read the attachment {path.name}: {exc.strerror or exc}") from None
            mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            maintype, _, subtype = mime_type.partition("/")
            mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=path.name)
        return mail

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send one reply by SMTP; 5xx answers are permanent, 4xx and network faults transient."""
        s = self.settings
        if not s.smtp_host:
            raise PermanentError("this mailbox has no smtp_host configured, so it cannot send")
        _refuse_plain("smtp", s.smtp_host, s.smtp_security)
        mail = self.build_mail(message)
        message_id = str(mail["Message-ID"])
        where = f"{s.smtp_host}:{s.smtp_port}"
        try:
            await aiosmtplib.send(mail, sender=s.address, recipients=[message.address], **self._smtp_options())
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            words = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if any(400 <= code < 500 for code in codes):
                raise TransientError(f"the mail server {where} put off the recipient for now: {words}") from None
            raise PermanentError(f"the mail server {where} refused the recipient: {words}") from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"the mail server {where} refused the login for {s.smtp_user}: {exc.code} {exc.message}") from None
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:
                raise TransientError(f"the mail server {where} said try later: {exc.code} {exc.message}") from None
            if 500 <= exc.code < 600:
                raise PermanentError(f"the mail server {where} refused the mail: {exc.code} {exc.message}") from None
            raise TransientError(f"the mail server {where} answered {exc.code} {exc.message}") from None
        except aiosmtplib.SMTPNotSupported as exc:
            raise PermanentError(f"the mail server {where} cannot do what smtp_security asks: {exc}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise _smtp_setup_error(exc, where, s.smtp_host) or TransientError(f"could not deliver to {where}: {exc}") from None
        if s.sent_folder:
            await self._file_in_sent(mail, message_id)
        return SendResult(external_id=message_id, thread_key=message_id)

    def _smtp_options(self) -> dict[str, Any]:
        s = self.settings
        options: dict[str, Any] = {
            "hostname": s.smtp_host,
            "port": s.smtp_port,
            "timeout": self.network_timeout,
            "use_tls": s.smtp_security == "tls",
            "start_tls": s.smtp_security == "starttls",
        }
        if s.smtp_security != "plain":
            options["tls_context"] = self._ssl_context()
        if s.smtp_user and s.smtp_password:
            options["username"], options["password"] = s.smtp_user, s.smtp_password
        return options

    async def _file_in_sent(self, mail: EmailMessage, message_id: str) -> None:
        """Copy a sent mail to the Sent folder; the mail is out already, so a failure here is
        logged, not reported as a failed send."""
        session = self._imap_session()
        try:
            await session.open()
            await session.append(mail.as_bytes(policy=policy.SMTP), self.settings.sent_folder, message_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            reason = _imap_error(exc, session.where, session.settings.imap_host).reason
            self.log.warning("%s: sent %s but could not file it in %s: %s", self.context.name, message_id, self.settings.sent_folder, reason)
        finally:
            await session.close()

    # -- doctor --------------------------------------------------------------------------

    async def check(self) -> str:
        """Log in to IMAP (and look at each folder) and to SMTP; says what works or why not."""
        s = self.settings
        session = self._imap_session()
        try:
            await session.open()
            for folder in (*s.folders, *([s.sent_folder] if s.sent_folder else [])):
                await session.select(folder)
            idle = "IDLE" in session.capabilities()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _imap_error(exc, session.where, session.settings.imap_host) from None
        finally:
            await session.close()
        plural = "folder" if len(s.folders) == 1 else "folders"
        summary = f"imap ok ({len(s.folders)} {plural}, {'IDLE' if idle else 'polling'})"
        if not s.smtp_host:
            return summary + ", no smtp_host: receive only"
        _refuse_plain("smtp", s.smtp_host, s.smtp_security)
        options = self._smtp_options()
        username, password = options.pop("username", None), options.pop("password", None)
        where = f"{s.smtp_host}:{s.smtp_port}"
        client = aiosmtplib.SMTP(**options)
        try:
            await client.connect()
            if username:
                await client.login(username, password)
            await client.quit()
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise PermanentError(f"the mail server {where} refused the login for {username}: {exc.code} {exc.message}") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise TransientError(f"the mail server {where} answered {exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise _smtp_setup_error(exc, where, s.smtp_host) or TransientError(f"cannot reach {where}: {exc}") from None
        finally:
            client.close()
        return summary + ", smtp ok"
