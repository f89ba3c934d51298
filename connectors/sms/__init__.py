"""The SMS channel: one SMPP 3.4 account at an SMSC or aggregator, or an HTTP SMS gateway.

`transport = "smpp"` (default): a transceiver session (connectors/sms/smpp.py) kept open with
enquire_link and reopened with backoff (the core's supervisor restarts `run`); replies go out as
submit_sm, GSM 7-bit or UCS-2 by the text, long texts as concatenated parts
(connectors/sms/parts.py); delivery receipts become delivery states; deliver_sm from a customer
becomes their message, answered only once stored.

`transport = "http"`: replies are sent by a configurable request (connectors/sms/http.py);
the gateway posts customers' messages and delivery reports to our listener.

The customer's identity is their phone number (kind `phone`, E.164 by the core): the same person
as their calls and WhatsApp. Per channel: `sender` (an alphanumeric id of up to 11 characters or
a number; TON/NPI follow), `daily_limit` (messages a day, server's local date; 0 = none),
`opt_out_words` (default СТОП, STOP; `opt_in_words` СТАРТ, START undo them): a customer who
texts one is refused every later send on this channel with the reason, and the customer is marked
"do not contact" when the core offers `set_do_not_contact` on its sink (else the card shows it as
an attribute through `set_customer_attribute`).

Inbound SMS carry no stable id: a message's key is its source, text and the SMSC's timestamp
(schedule_delivery_time, when the SMSC fills it), remembered for `redelivery_window` seconds in
the channel's cursor together with the stored message (connectors/sms/state.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from aiosmpplib import PhoneNumber

from connectors.base import (
    N_,
    ChannelContext,
    Connector,
    DeliveryUpdate,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
    WebRoute,
    Words,
)
from connectors.sms.parts import ReceiptIds, Segment, decode_text, encode_parts, is_receipt, parse_receipt, smpp_time, split_udh
from connectors.sms.smpp import Incoming, SmppConfig, SmppSession, address
from connectors.sms.state import SmsState, message_key
from omniconsole.models import DeliveryState, IdentityKind

DEFAULT_OPT_OUT = ("СТОП", "STOP")
DEFAULT_OPT_IN = ("СТАРТ", "START")
TRANSPORTS = ("smpp", "http")
_TLV_SAR_REF, _TLV_SAR_TOTAL, _TLV_SAR_SEQ = 0x020C, 0x020E, 0x020F
_TLV_RECEIPTED_ID, _TLV_MESSAGE_STATE = 0x001E, 0x0427
_PUNCTUATION = " \t\r\n.!,;:\"'«»()-"


def _words(value: Any, default: Sequence[str], key: str) -> frozenset[str]:
    if value is None:
        value = list(default)
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise ValueError(f'{key} must be a list of words such as ["СТОП", "STOP"]')
    return frozenset(w.strip(_PUNCTUATION).casefold() for w in value if w.strip(_PUNCTUATION))


def _number(settings: Any, key: str, default: float, minimum: float = 0) -> float:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(f"{key} must be a number of at least {minimum:g}")
    return float(value)


class SmsConnector(Connector):
    """One SMS account (SMPP or an HTTP gateway); see the module docstring for its settings."""

    kind = "sms"
    identity_kind = IdentityKind.PHONE

    def __init__(self, context: ChannelContext):
        super().__init__(context)
        settings = context.settings
        self.transport = str(settings.get("transport") or "smpp").lower()
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be smpp or http (got {self.transport!r})")
        self.sender = str(settings.get("sender") or "").strip()
        self.region = str(settings.get("region") or "RU").upper()
        self.daily_limit = int(_number(settings, "daily_limit", 0))
        self.redelivery_window = _number(settings, "redelivery_window", 600, 1)
        self.parts_timeout = _number(settings, "parts_timeout", 600, 1)
        self.opt_out_words = _words(settings.get("opt_out_words"), DEFAULT_OPT_OUT, "opt_out_words")
        self.opt_in_words = _words(settings.get("opt_in_words"), DEFAULT_OPT_IN, "opt_in_words")
        if self.sender and not self.sender.lstrip("+").isdigit() and len(self.sender) > 11:
            raise ValueError(f"sender {self.sender!r}: an alphanumeric sender id has at most 11 characters")
        self.smpp: SmppConfig | None = None
        self.gateway = None
        if self.transport == "smpp":
            host = str(settings.get("host") or "")
            system_id = str(settings.get("system_id") or "")
            if not host or not system_id:
                raise ValueError("an SMPP channel needs host and system_id (and password_env or password_file)")
            password = str(settings.get("password") or "")
            if len(system_id) > 15 or len(password) > 8:
                raise ValueError("SMPP 3.4 allows a system_id of up to 15 characters and a password of up to 8")
            self.smpp = SmppConfig(
                host=host,
                port=int(_number(settings, "port", 2775, 1)),
                system_id=system_id,
                password=password,
                system_type=str(settings.get("system_type") or ""),
                window=int(_number(settings, "window", 10, 1)),
                enquire_link=_number(settings, "enquire_link", 30, 0.05),
                response_timeout=_number(settings, "response_timeout", 10, 0.05),
                throttle_pause=_number(settings, "throttle_pause", 1, 0.01),
                throttle_max=_number(settings, "throttle_max", 30, 0.01),
            )
        else:
            from connectors.sms.http import HttpGateway  # only HTTP channels need httpx's client

            self.gateway = HttpGateway(settings, self)
        self.state = SmsState()
        self.receipt_ids = ReceiptIds()
        self._sink: InboundSink | None = None
        self._session: SmppSession | None = None
        self._state_lock = asyncio.Lock()
        self._partial: dict[int, dict[int, str]] = {}  # parts already accepted of a message whose send broke off

    # -- lifecycle -------------------------------------------------------------------------

    def web_routes(self) -> Sequence[WebRoute]:
        """The HTTP gateway's webhooks (`POST /inbound`, `POST /status`); none for SMPP."""
        return self.gateway.routes() if self.gateway is not None else ()

    async def check(self) -> str:
        """Bind to the SMSC and unbind (SMPP), or say what is configured (HTTP)."""
        if self.gateway is not None:
            return self.gateway.describe()
        session = SmppSession(self.smpp, self._on_deliver, self.log)
        smsc = await session.open()
        await session.close(unbind=True)
        where = f"{self.smpp.system_id}@{self.smpp.host}:{self.smpp.port}"
        if smsc:
            return Words(N_("SMPP {where} (SMSC {smsc})"), where=where, smsc=smsc)
        return Words(N_("SMPP {where} (SMSC unnamed)"), where=where)

    async def run(self, sink: InboundSink) -> None:
        """Receive until cancelled: an SMPP session (raising TransientError when it drops, so
        the core reconnects with backoff) or the gateway's webhooks."""
        self.state = SmsState.from_cursor(sink.cursor)
        self.receipt_ids.convention = str(self.state.receipts.get("convention") or "")
        self.receipt_ids.width = int(self.state.receipts.get("width") or 0)
        self._sink = sink
        sweeper = asyncio.create_task(self._sweep_parts())
        try:
            if self.gateway is not None:
                sink.connected(self.gateway.describe())
                await asyncio.Event().wait()
            session = SmppSession(self.smpp, self._on_deliver, self.log)
            smsc = await session.open()
            self._session = session
            sink.connected(f"bound to {smsc or 'the SMS centre'} at {self.smpp.host}:{self.smpp.port} as {self.smpp.system_id}")
            await session.serve()
        finally:
            sweeper.cancel()
            self._sink = None
            if self._session is not None:
                session, self._session = self._session, None
                await session.close(unbind=True)

    async def close(self) -> None:
        """Unbind and close the link (and the gateway's HTTP client)."""
        if self._session is not None:
            await self._session.close(unbind=True)
        if self.gateway is not None:
            await self.gateway.close()

    @property
    def sink(self) -> InboundSink | None:
        """The core's sink while the channel runs (None before and after)."""
        return self._sink

    # -- what the channel remembers --------------------------------------------------------

    async def _save(self, messages: Sequence[InboundMessage] = ()) -> Sequence[Any]:
        """Store `messages` with the channel's state as their cursor, in one transaction."""
        sink = self._sink
        if sink is None:
            raise TransientError("the SMS channel is not running")
        self.state.receipts = {"convention": self.receipt_ids.convention, "width": self.receipt_ids.width}
        return await sink.deliver(list(messages), self.state.cursor(self.redelivery_window)) or ()

    def normalized(self, number: str) -> str:
        """A number in E.164 as the core keeps phone identities (the `region` for national ones)."""
        text = number.strip()
        try:
            parsed = phonenumbers.parse(text, self.region)
            if phonenumbers.is_possible_number(parsed):
                return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            pass
        return text

    # -- receiving -------------------------------------------------------------------------

    async def _on_deliver(self, incoming: Incoming) -> None:
        """One deliver_sm: a receipt becomes a delivery state, a customer's SMS (or its last
        missing part) is stored. Returns only when that is durable; raising makes the session
        ask the SMSC to deliver it again."""
        if is_receipt(incoming.esm_class):
            await self._on_receipt(incoming)
            return
        segment, data = split_udh(incoming.data, incoming.esm_class)
        text = decode_text(data, incoming.data_coding)
        source = ("+" + incoming.source) if incoming.source_ton == 1 and incoming.source.isdigit() else incoming.source
        tlvs = incoming.tlvs
        if segment is None and _TLV_SAR_REF in tlvs and _TLV_SAR_TOTAL in tlvs and _TLV_SAR_SEQ in tlvs:
            # Concatenation told by the sar_* TLVs (SMPP 3.4 5.3.2.22-24) instead of a UDH.
            segment = Segment(int.from_bytes(tlvs[_TLV_SAR_REF], "big"), tlvs[_TLV_SAR_TOTAL][0], tlvs[_TLV_SAR_SEQ][0])
        await self.take_text(source, text, incoming.smsc_time, segment=segment, to=incoming.destination)

    async def take_text(
        self,
        source: str,
        text: str,
        smsc_time: str = "",
        *,
        segment: Segment | None = None,
        to: str = "",
        external_id: str | None = None,
        sent_at: datetime | None = None,
    ) -> None:
        """Store one inbound SMS or part (the SMPP and HTTP ways in share this). `smsc_time`
        is the sender's timestamp as given (part of the redelivery key), `sent_at` the same
        time read, when the caller could read it."""
        async with self._state_lock:
            now = time.time()
            if segment is not None and segment.total > 1:
                group = f"{source}|{to}|{segment.reference}|{segment.total}"
                part_key = message_key(source, f"{group}|{segment.number}|{text}", smsc_time)
                seen = self.state.recent.get(part_key)
                if seen is not None and now - seen[1] <= self.redelivery_window:
                    return  # a part of a message already stored, delivered again
                pending = self.state.parts.setdefault(group, {"t": now, "smsc_time": smsc_time, "n": {}, "keys": []})
                pending["n"][str(segment.number)] = text
                if part_key not in pending["keys"]:
                    pending["keys"].append(part_key)
                if len(pending["n"]) < segment.total:
                    await self._save()  # the part is kept (and then answered)
                    return
                del self.state.parts[group]
                for key in pending["keys"]:
                    self.state.recent[key] = ("", now)
                text = "".join(pending["n"][str(n)] for n in range(1, segment.total + 1))
                smsc_time = pending.get("smsc_time") or smsc_time
            await self._store(source, text, smsc_time, to, now, external_id, sent_at)

    async def _store(
        self,
        source: str,
        text: str,
        smsc_time: str,
        to: str,
        now: float,
        external_id: str | None,
        sent_at: datetime | None = None,
    ) -> None:
        key = message_key(self.normalized(source), text, smsc_time)
        known = self.state.recent.get(key)
        if known is not None and now - known[1] > self.redelivery_window:
            known = None  # the same words again, later: a new message
        if external_id is None:
            if known is not None and known[0]:
                external_id = known[0]  # delivered again within the window: the same message
            else:
                external_id = f"sms:{key}" if smsc_time else f"sms:{key}:{int(now)}"
        self.state.recent[key] = (external_id, known[1] if known else now)
        sent_at = sent_at or smpp_time(smsc_time) or datetime.fromtimestamp(now, UTC)
        word = text.strip(_PUNCTUATION).casefold()
        number = self.normalized(source)
        opt_change = None
        if word in self.opt_out_words and number not in self.state.opt_out:
            stamp = datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M")
            self.state.opt_out[number] = f"texted {word.upper()} on {stamp}"
            opt_change = f"texted {word.upper()} on {stamp}: no more SMS on this channel"
        elif word in self.opt_in_words and number in self.state.opt_out:
            del self.state.opt_out[number]
            opt_change = ""
        message = InboundMessage(
            external_id=external_id,
            identity_kind=IdentityKind.PHONE,
            address=source,
            body=text,
            sent_at=sent_at,
            meta={"to": to} if to else {},
        )
        receipts = await self._save([message])
        if opt_change is not None and receipts:
            await self._mark_customer(receipts[0].customer_id, opt_change)

    async def _mark_customer(self, customer_id: int, value: str) -> None:
        """Mark the customer "do not contact" (empty `value`: allowed again) where the core
        offers it, else show the opt-out as an attribute on their card."""
        flag = getattr(self._sink, "set_do_not_contact", None)
        if flag is not None:
            try:
                await flag(customer_id, value or None)
            except Exception:
                self.log.exception("could not record the SMS opt-out on customer %d's card", customer_id)
            return
        mark = getattr(self._sink, "set_customer_attribute", None)
        if mark is None:
            self.log.info("the core offers no customer attributes to channels; the opt-out is kept by the channel only")
            return
        try:
            await mark(customer_id, f"SMS opt-out ({self.context.name})", value or None)
        except Exception:
            self.log.exception("could not record the SMS opt-out on customer %d's card", customer_id)

    async def _sweep_parts(self) -> None:
        """Store long messages whose missing parts never came, after `parts_timeout`."""
        while True:
            await asyncio.sleep(min(30.0, self.parts_timeout / 2))
            async with self._state_lock:
                now = time.time()
                for group in [g for g, p in self.state.parts.items() if now - float(p.get("t", now)) > self.parts_timeout]:
                    pending = self.state.parts.pop(group)
                    source, to, _, total = group.split("|")
                    text = "".join(
                        pending["n"].get(str(n), f"[part {n} of {total} did not arrive]") for n in range(1, int(total) + 1)
                    )
                    try:
                        await self._store(source, text, pending.get("smsc_time", ""), to, now, None)
                    except Exception as exc:
                        self.state.parts[group] = pending  # tried again at the next sweep
                        self.log.warning("an incomplete long SMS from %s is not stored yet: %s", source, exc)

    async def _on_receipt(self, incoming: Incoming) -> None:
        text = decode_text(incoming.data, incoming.data_coding)
        receipted = incoming.tlvs.get(_TLV_RECEIPTED_ID, b"").split(b"\0", 1)[0].decode("latin-1")
        state_tlv = incoming.tlvs.get(_TLV_MESSAGE_STATE)
        receipt = parse_receipt(text, receipted, state_tlv[0] if state_tlv else None)
        if receipt is None or receipt.state is None:
            self.log.info("a delivery receipt we cannot read was skipped: %r", text[:120])
            return
        convention = self.receipt_ids.convention
        ids = self.receipt_ids.match(receipt.message_id)
        error = receipt.reason() if receipt.state is DeliveryState.FAILED else ""
        sink = self._sink
        if sink is None:
            raise TransientError("the SMS channel is not running")
        await sink.delivery_updates([DeliveryUpdate(external_id=i, state=receipt.state, error=error) for i in ids])
        if self.receipt_ids.convention != convention:
            async with self._state_lock:
                await self._save()

    # -- sending ---------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send one reply as SMS; refused in words for an opted-out customer or past the
        daily limit; a long text goes as concatenated parts."""
        if message.attachments:
            raise PermanentError("SMS carries text only; send files by another channel")
        if not message.body.strip():
            raise PermanentError("nothing to send: the message has no text")
        if self._sink is None:
            # Until `run` has read the channel's state, the opt-outs and today's count are unknown.
            raise TransientError("the SMS channel is starting; the message goes once it runs")
        number = self.normalized(message.address)
        refusal = self.state.opt_out.get(number)
        if refusal:
            raise PermanentError(f"the customer asked for no more SMS from this channel ({refusal}); not sent")
        today = datetime.now().strftime("%Y-%m-%d")
        if self.daily_limit and self.state.sent_today(today) >= self.daily_limit:
            raise PermanentError(
                f"the daily limit of {self.daily_limit} SMS on this channel is reached; it starts again at midnight (not sent)"
            )
        if self.gateway is not None:
            external_id = await self.gateway.send(message, number)
        else:
            external_id = await self._submit(message, number)
        async with self._state_lock:
            self.state.sent_today(today)
            self.state.sent += 1
            try:
                await self._save()
            except Exception as exc:  # the SMS is out: never let the outbox send it again
                self.log.warning("today's SMS count is not saved yet (%s); it is saved with the next change", exc)
        return SendResult(external_id=external_id)

    async def _submit(self, message: OutboundMessage, number: str) -> str:
        session = self._session
        if session is None or session.closed.is_set():
            raise TransientError("not bound to the SMS centre; the channel is reconnecting")
        try:
            parts = encode_parts(message.body, reference=message.id)
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        destination = address(number)
        source = address(self.sender, sender=True) if self.sender else PhoneNumber("")  # empty: the account's default sender
        # Parts already accepted by the SMSC when an earlier attempt broke off are not sent
        # again; the rest go at once, as many in flight as the window allows.
        done: dict[int, str] = self._partial.setdefault(message.id, {})

        async def one(index: int) -> None:
            done[index] = smsc_id = await session.submit(parts[index], destination, source)
            # Known at once: the receipt may come before the other parts are answered.
            self.receipt_ids.remember(smsc_id, self.receipt_ids.remember(done[0]) if 0 in done else None)

        results = await asyncio.gather(*(one(i) for i in range(len(parts)) if i not in done), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            if any(isinstance(e, PermanentError) for e in errors):
                self._partial.pop(message.id, None)
                raise next(e for e in errors if isinstance(e, PermanentError))
            raise next((e for e in errors if isinstance(e, TransientError)), errors[0])
        self._partial.pop(message.id, None)
        first = self.receipt_ids.remember(done[0])
        for index in range(1, len(parts)):
            self.receipt_ids.remember(done[index], first)
        return first
