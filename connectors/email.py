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

The pieces live in `connectors/mail/`: the options and TLS rules in `settings.py`, the IMAP
connection in `imap.py`; reading a mail is `connectors/mail_parse.py`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import mimetypes
import re
import ssl
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, ClassVar

import aiosmtplib

from connectors.base import (
    N_,
    ChannelContext,
    Connector,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
    Words,
    raise_if_cancelled,
)
from connectors.mail.imap import ImapSession, imap_error, imap_utf7, uid_set
from connectors.mail.settings import MailboxSettings, refuse_plain, smtp_setup_error
from connectors.mail_parse import message_key, parse_mail
from omniconsole.models import IdentityKind

__all__ = ["EmailConnector", "MailboxSettings", "imap_utf7", "outbound_message_id", "reply_subject", "uid_set"]


def reply_subject(subject: str) -> str:
    """ "Re: subject", without piling up prefixes when the subject already has one."""
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

    def _imap_session(self) -> ImapSession:
        s = self.settings
        context = self._ssl_context() if s.imap_security != "plain" else None
        return ImapSession(s, context, self.network_timeout)

    # -- receiving -----------------------------------------------------------------------

    async def run(self, sink: InboundSink) -> None:
        """Receive until cancelled; see the module docstring for the cycle."""
        s = self.settings
        session = self._imap_session()
        try:
            await session.open()
            idle = "IDLE" in session.capabilities()
            plural = "folder" if len(s.folders) == 1 else "folders"
            sink.connected(
                f"{s.imap_host}, {len(s.folders)} {plural}" + ("" if idle else f", polling every {s.poll_interval:g} s")
            )
            while True:
                raise_if_cancelled()
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
            raise imap_error(exc, session.where, session.settings.imap_host) from exc
        finally:
            await session.close()

    async def _sync_folder(self, session: ImapSession, folder: str, sink: InboundSink) -> None:
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
                    self.context.name,
                    folder,
                    uidvalidity,
                    state["uidvalidity"],
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
            for uid, raw, stored_at in fetched:
                key = message_key(raw)
                if key in messages:
                    continue  # the same mail twice in one folder: the first copy is enough
                parsed = parse_mail(raw, external_id=key, delivered_at=stored_at)
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
        html_part = (message.meta or {}).get("html")
        if isinstance(html_part, str) and html_part.strip():
            # An answer from the library rendered as HTML (omniconsole/answers/render.py): sent as
            # multipart/alternative, the plain body first (RFC 2046 5.1.4: the richest last).
            document = f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{html_part}</body></html>\n'
            mail.add_alternative(document, subtype="html", cte="quoted-printable" if not document.isascii() else "7bit")
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
            raise PermanentError(N_("this mailbox has no smtp_host configured, so it cannot send"))
        refuse_plain("smtp", s.smtp_host, s.smtp_security)
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
            raise PermanentError(
                f"the mail server {where} refused the login for {s.smtp_user}: {exc.code} {exc.message}"
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:
                raise TransientError(f"the mail server {where} said try later: {exc.code} {exc.message}") from None
            if 500 <= exc.code < 600:
                raise PermanentError(f"the mail server {where} refused the mail: {exc.code} {exc.message}") from None
            raise TransientError(f"the mail server {where} answered {exc.code} {exc.message}") from None
        except aiosmtplib.SMTPNotSupported as exc:
            raise PermanentError(f"the mail server {where} cannot do what smtp_security asks: {exc}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise smtp_setup_error(exc, where, s.smtp_host) or TransientError(f"could not deliver to {where}: {exc}") from None
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
            reason = imap_error(exc, session.where, session.settings.imap_host).reason
            self.log.warning(
                "%s: sent %s but could not file it in %s: %s", self.context.name, message_id, self.settings.sent_folder, reason
            )
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
            raise imap_error(exc, session.where, session.settings.imap_host) from None
        finally:
            await session.close()
        mode = "IDLE" if idle else Words(N_("polling"))
        if len(s.folders) == 1:
            summary = Words(N_("imap ok (1 folder, {mode})"), mode=mode)
        else:
            summary = Words(N_("imap ok ({n} folders, {mode})"), n=len(s.folders), mode=mode)
        if not s.smtp_host:
            return Words(N_("{summary}, no smtp_host: receive only"), summary=summary)
        refuse_plain("smtp", s.smtp_host, s.smtp_security)
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
            raise smtp_setup_error(exc, where, s.smtp_host) or TransientError(f"cannot reach {where}: {exc}") from None
        finally:
            client.close()
        return Words(N_("{summary}, smtp ok"), summary=summary)
