"""One SMPP 3.4 session with an SMSC, bound as a transceiver: submit_sm out, deliver_sm in.

    session = SmppSession(SmppConfig(...), on_deliver, log)
    await session.open()            # connect and bind_transceiver; errors in words
    task = asyncio.create_task(session.serve())   # reads PDUs, keeps the link alive
    message_id = await session.submit(part, destination, source)

What goes out is packed by aiosmpplib's PDU classes (`BindTransceiver`, `SubmitSm`,
`EnquireLink`, `DeliverSmResp`, `GenericNack`...). What comes in is read here: aiosmpplib's
readers refuse command_status codes and TON values outside its tables (SMSCs use vendor codes
0x400-0x4FF) and read a 16-bit concatenation reference as four bytes, and an SMSC's deliver_sm
must never take the session down.

Flow control (SMPP 3.4 2.8): at most `window` submit_sm wait for their response at a time.
ESME_RTHROTTLED and ESME_RMSGQFUL pause every submission for `throttle_pause` seconds (doubling
while they repeat), then the same part is submitted again. enquire_link goes out after
`enquire_link` seconds without traffic; a link that answers nothing within `response_timeout`
is dropped (the connector reconnects with backoff). A deliver_sm is answered only after
`on_deliver` returns (the message is stored); if that fails, the answer is
ESME_RX_T_APPNACK, which asks the SMSC to deliver it again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiosmpplib import (
    NPI,
    TON,
    BindTransceiver,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    PhoneNumber,
    SmppCommandStatus,
    SubmitSm,
    Unbind,
    UnbindResp,
)

from connectors.base import PermanentError, TransientError
from connectors.sms.parts import Part

# Command ids (SMPP 3.4 5.1.2.1).
GENERIC_NACK = 0x80000000
BIND_TRANSCEIVER, BIND_TRANSCEIVER_RESP = 0x00000009, 0x80000009
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
DELIVER_SM, DELIVER_SM_RESP = 0x00000005, 0x80000005
UNBIND, UNBIND_RESP = 0x00000006, 0x80000006
ENQUIRE_LINK, ENQUIRE_LINK_RESP = 0x00000015, 0x80000015
MAX_PDU = 64 * 1024  # no SMPP 3.4 PDU comes near this; a larger length is a broken stream

# command_status values (SMPP 3.4 5.1.3) and what they mean to an operator.
ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RX_T_APPNACK = 0x58, 0x14, 0x64
_TRANSIENT = {
    0x08: "the SMS centre had a system error",
    0x14: "the SMS centre's message queue is full",
    0x58: "the SMS centre asks to send more slowly (throttled)",
    0x64: "the SMS centre could not take the message right now",
    0x45: "the SMS centre failed to submit the message",
    0xFE: "the SMS centre failed to deliver the message (a network fault)",
}
_PERMANENT = {
    0x01: "the message length is invalid",
    0x02: "the command length is invalid",
    0x03: "the SMS centre does not know this command",
    0x04: "the SMPP account is not bound for sending",
    0x0A: "the sender id is not valid for this SMPP account",
    0x0B: "the phone number is not valid",
    0x0D: "the SMS centre refused the bind",
    0x0E: "the SMPP password is wrong",
    0x0F: "the SMPP system id (login) is wrong",
    0x33: "the number of destinations is invalid",
    0x48: "the sender id's type of number (TON) is not accepted",
    0x49: "the sender id's numbering plan (NPI) is not accepted",
    0x50: "the phone number's type of number (TON) is not accepted",
    0x51: "the phone number's numbering plan (NPI) is not accepted",
    0x53: "the SMS centre refused the system type",
    0x61: "the scheduled delivery time is invalid",
    0x62: "the validity period is invalid",
    0x66: "the SMS centre refused the message (it could not be delivered)",
    0x67: "the SMS centre could not find a route to this number",
    0xC0: "the optional parameters are invalid",
    0xC1: "an optional parameter is not allowed here",
    0xC4: "an optional parameter's value is invalid",
}
_BIND_REFUSALS = {0x0D, 0x0E, 0x0F, 0x53}


def status_words(status: int) -> str:
    """An SMPP command_status as a sentence with its code."""
    words = _TRANSIENT.get(status) or _PERMANENT.get(status)
    if words is None:
        words = "the SMS centre gave a vendor-specific error" if 0x400 <= status <= 0x4FF else "the SMS centre refused"
    return f"{words} (SMPP status 0x{status:08X})"


def status_error(status: int, doing: str) -> TransientError | PermanentError:
    """Our error taxonomy for an SMSC's refusal: throttling and temporary faults pass, an
    invalid number or a refused sender does not."""
    reason = f"{status_words(status)} while {doing}"
    if status in _TRANSIENT:
        return TransientError(reason, retry_after=1.0 if status in (ESME_RTHROTTLED, ESME_RMSGQFUL) else None)
    return PermanentError(reason)


@dataclass(frozen=True, slots=True)
class SmppConfig:
    """How to reach and use one SMPP account (times in seconds)."""

    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    window: int = 10
    enquire_link: float = 30.0
    response_timeout: float = 10.0
    throttle_pause: float = 1.0
    throttle_max: float = 30.0


@dataclass(slots=True)
class Incoming:
    """A deliver_sm as read from the wire: addresses, esm_class, data_coding, raw user data
    (UDH included), the SMSC's schedule_delivery_time and its TLVs by tag."""

    source: str
    source_ton: int
    destination: str
    esm_class: int
    data_coding: int
    data: bytes
    smsc_time: str = ""
    tlvs: dict[int, bytes] = field(default_factory=dict)


def parse_deliver_sm(body: bytes) -> Incoming:
    """The body of a deliver_sm (SMPP 3.4 4.6.1); ValueError when it is cut short."""
    index = 0

    def cstring() -> str:
        nonlocal index
        end = body.index(b"\0", index)
        value = body[index:end].decode("latin-1")
        index = end + 1
        return value

    def octet() -> int:
        nonlocal index
        value = body[index]
        index += 1
        return value

    try:
        cstring()  # service_type
        source_ton, _ = octet(), octet()
        source = cstring()
        octet(), octet()
        destination = cstring()
        esm_class, _, _ = octet(), octet(), octet()
        smsc_time = cstring()  # schedule_delivery_time
        cstring()  # validity_period
        octet(), octet()  # registered_delivery, replace_if_present_flag
        data_coding, _, length = octet(), octet(), octet()
    except IndexError:
        raise ValueError("the deliver_sm is cut short") from None
    data = body[index : index + length]
    index += length
    tlvs: dict[int, bytes] = {}
    while index + 4 <= len(body):
        tag, size = struct.unpack_from("!HH", body, index)
        tlvs[tag] = body[index + 4 : index + 4 + size]
        index += 4 + size
    if 0x0424 in tlvs and not data:  # message_payload instead of short_message
        data = tlvs[0x0424]
    return Incoming(source, source_ton, destination, esm_class, data_coding, data, smsc_time, tlvs)


OnDeliver = Callable[[Incoming], Awaitable[None]]


class SmppSession:
    """One bound transceiver session; `serve()` ends (raising TransientError) when the link
    drops, and the connector opens a new session."""

    def __init__(self, config: SmppConfig, on_deliver: OnDeliver, log: logging.Logger):
        self.config = config
        self.on_deliver = on_deliver
        self.log = log
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._sequence = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self._window = asyncio.Semaphore(max(1, config.window))
        self._resume_at = 0.0  # no submit_sm before this (monotonic): the SMSC throttled us
        self._last_traffic = time.monotonic()
        self._handlers: set[asyncio.Task] = set()
        self.closed = asyncio.Event()
        self.smsc_id = ""

    # -- the link ----------------------------------------------------------------------------

    async def open(self) -> str:
        """Connect and bind as a transceiver; returns the SMSC's system id. TransientError
        when it cannot be reached, PermanentError when it refuses our credentials."""
        where = f"{self.config.host}:{self.config.port}"
        try:
            async with asyncio.timeout(self.config.response_timeout):
                self._reader, self._writer = await asyncio.open_connection(self.config.host, self.config.port)
        except (TimeoutError, OSError) as exc:
            raise TransientError(f"cannot connect to the SMS centre at {where}: {exc or type(exc).__name__}") from exc
        bind = BindTransceiver(
            sequence_num=next(self._sequence),
            system_id=self.config.system_id,
            password=self.config.password,
            system_type=self.config.system_type,
        )
        self._write(bind.pdu())
        try:
            async with asyncio.timeout(self.config.response_timeout):
                command, status, sequence, body = await self._read_pdu()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            raise TransientError(f"the SMS centre at {where} did not answer the bind") from exc
        if command == GENERIC_NACK or command != BIND_TRANSCEIVER_RESP:
            await self.close()
            raise PermanentError(
                f"the SMS centre at {where} does not take bind_transceiver (answered command 0x{command:08X}, status 0x{status:08X})"
            )
        if status:
            await self.close()
            error = status_error(status, "binding")
            if status in _BIND_REFUSALS:
                raise PermanentError(f"{error.reason}; check system_id and password")
            raise error
        self.smsc_id = body.split(b"\0", 1)[0].decode("latin-1")
        self._last_traffic = time.monotonic()
        return self.smsc_id

    async def serve(self) -> None:
        """Read PDUs and keep the link alive until it drops; raises TransientError then."""
        keepalive = asyncio.create_task(self._keepalive())
        try:
            while True:
                try:
                    command, status, sequence, body = await self._read_pdu()
                except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
                    raise TransientError("the SMS centre closed the connection") from exc
                self._last_traffic = time.monotonic()
                if command & 0x80000000:
                    future = self._waiting.pop(sequence, None)
                    if future is not None and not future.done():
                        future.set_result((status, body))
                    elif command == GENERIC_NACK:
                        self.log.warning("the SMS centre sent generic_nack 0x%08X for sequence %d", status, sequence)
                    continue
                if command == ENQUIRE_LINK:
                    self._write(EnquireLinkResp(sequence_num=sequence).pdu())
                elif command == DELIVER_SM:
                    task = asyncio.create_task(self._deliver(sequence, body))
                    self._handlers.add(task)
                    task.add_done_callback(self._handlers.discard)
                elif command == UNBIND:
                    self._write(UnbindResp(sequence_num=sequence).pdu())
                    raise TransientError("the SMS centre ended the session (unbind)")
                else:
                    self._write(GenericNack(sequence_num=sequence, command_status=SmppCommandStatus.ESME_RINVCMDID).pdu())
        finally:
            keepalive.cancel()
            await self.close()

    async def close(self, unbind: bool = False) -> None:
        """Drop the link (after an unbind when asked); every submit waiting for an answer fails."""
        writer, self._writer = self._writer, None
        if writer is not None:
            if unbind:
                with contextlib.suppress(Exception):
                    writer.write(Unbind(sequence_num=next(self._sequence)).pdu())
                    async with asyncio.timeout(1.0):
                        await writer.drain()
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(TransientError("the connection to the SMS centre dropped before it answered"))
        self._waiting.clear()
        for task in list(self._handlers):
            task.cancel()
        self.closed.set()

    async def _keepalive(self) -> None:
        while True:
            idle = time.monotonic() - self._last_traffic
            if idle < self.config.enquire_link:
                await asyncio.sleep(self.config.enquire_link - idle)
                continue
            try:
                status, _ = await self._request(EnquireLink(sequence_num=next(self._sequence)))
            except TransientError:
                self.log.warning("the SMS centre did not answer enquire_link; dropping the link")
                if self._writer is not None:
                    self._writer.close()
                return
            self._last_traffic = time.monotonic()

    # -- sending -----------------------------------------------------------------------------

    async def submit(self, part: Part, destination: PhoneNumber, source: PhoneNumber, registered: bool = True) -> str:
        """submit_sm one part; the SMSC's message id. Throttling is waited out here (the
        same part goes again); other refusals raise in our taxonomy."""
        pause = self.config.throttle_pause
        while True:
            wait = self._resume_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            message = SubmitSm(
                short_message="-",
                source=source,
                destination=destination,
                esm_class=part.esm_class,
                registered_delivery=1 if registered else 0,
                encoding="ucs2" if part.data_coding == 8 else None,
            )
            message.set_encoded_message(part.data)
            async with self._window:
                message.sequence_num = next(self._sequence)
                status, body = await self._request(message)
            if status in (ESME_RTHROTTLED, ESME_RMSGQFUL) and pause <= self.config.throttle_max:
                self.log.info("%s; pausing submissions for %.1f s", status_words(status), pause)
                self._resume_at = max(self._resume_at, time.monotonic() + pause)
                pause *= 2
                continue
            if status:
                raise status_error(status, "sending")
            message_id = body.split(b"\0", 1)[0].decode("latin-1").strip()
            if not message_id:
                raise TransientError("the SMS centre accepted the message but gave no message id")
            return message_id

    async def _request(self, message) -> tuple[int, bytes]:
        if self._writer is None:
            raise TransientError("not connected to the SMS centre")
        future: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._waiting[message.sequence_num] = future
        self._write(message.pdu())
        try:
            async with asyncio.timeout(self.config.response_timeout):
                return await future
        except TimeoutError:
            raise TransientError(f"the SMS centre did not answer within {self.config.response_timeout:.0f} s") from None
        finally:
            self._waiting.pop(message.sequence_num, None)

    # -- receiving ---------------------------------------------------------------------------

    async def _deliver(self, sequence: int, body: bytes) -> None:
        """Hand one deliver_sm over; answer it once `on_deliver` has stored it."""
        try:
            incoming = parse_deliver_sm(body)
        except ValueError as exc:
            self.log.warning("a deliver_sm could not be read (%s); answered as invalid", exc)
            self._write(DeliverSmResp(sequence_num=sequence, command_status=SmppCommandStatus.ESME_RSYSERR).pdu())
            return
        try:
            await self.on_deliver(incoming)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.warning("a deliver_sm was not stored (%s); the SMS centre is asked to deliver it again", exc)
            self._write(DeliverSmResp(sequence_num=sequence, command_status=SmppCommandStatus.ESME_RX_T_APPN).pdu())
            return
        self._write(DeliverSmResp(sequence_num=sequence).pdu())

    # -- the wire ----------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    async def _read_pdu(self) -> tuple[int, int, int, bytes]:
        assert self._reader is not None
        header = await self._reader.readexactly(16)
        length, command, status, sequence = struct.unpack("!IIII", header)
        if not 16 <= length <= MAX_PDU:
            raise ConnectionError(f"a PDU of {length} bytes: the stream is broken")
        body = await self._reader.readexactly(length - 16) if length > 16 else b""
        return command, status, sequence, body


def address(number: str, *, sender: bool = False) -> PhoneNumber:
    """A PhoneNumber with TON/NPI as SMPP 3.4 5.2.5-5.2.6 want them: an alphanumeric sender id
    is TON 5 / NPI 0, `+7999...` is international (1) / ISDN (1), a short code is TON 3
    (network specific) / NPI 0, other digits are national (2) / ISDN (1)."""
    text = number.strip()
    digits = text[1:] if text.startswith("+") else text
    if not digits.isdigit():
        if not sender:
            raise PermanentError(f"{number!r} is not a phone number")
        return PhoneNumber(text[:11], TON.ALPHANUMERIC, NPI.UNKNOWN)
    if text.startswith("+") or len(digits) >= 11:
        return PhoneNumber(digits, TON.INTERNATIONAL, NPI.ISDN)
    if sender and len(digits) <= 6:
        return PhoneNumber(digits, TON.NETWORK_SPECIFIC, NPI.UNKNOWN)
    return PhoneNumber(digits, TON.NATIONAL, NPI.ISDN)
