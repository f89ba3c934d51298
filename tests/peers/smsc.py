"""An SMSC on 127.0.0.1, written from the SMPP 3.4 specification, for the SMS channel's tests.

It packs and reads PDUs with its own code (struct, the GSM 03.38 tables below), not the
library the connector uses, so a codec mistake on either side shows. What it does, with the
spec's section:

* bind_transceiver (4.1.5): checks system_id/password (ESME_RINVSYSID 0x0F, ESME_RINVPASWD
  0x0E); anything but bind or enquire_link before a bind gets ESME_RINVBNDSTS (0x04).
* enquire_link (4.11), unbind (4.2); an unknown command id gets generic_nack ESME_RINVCMDID
  (0x03); a command_length below 16 gets generic_nack ESME_RINVCMDLEN (0x02).
* submit_sm (4.4): records each part (addresses with TON/NPI, esm_class, data_coding, UDH,
  text), answers with a message id in hex or decimal (`id_format`), or ESME_RTHROTTLED
  (`throttle_next`), or generic_nack ESME_RSYSERR (`nack_next`), or ESME_RINVDSTADR 0x0B for numbers in `invalid_numbers`; `resp_delay`
  holds answers so a test sees how many submit_sm the client keeps in flight (`max_in_flight`).
* delivery receipts (Appendix B): a deliver_sm with esm_class 0x04 and the text
  `id:<id> sub:001 dlvrd:001 submit date:... done date:... stat:DELIVRD err:000 text:...`,
  its id in `receipt_id_format` (hex or decimal, which may differ from the submit_sm_resp),
  and optionally the receipted_message_id (0x001E) / message_state (0x0427) TLVs.
* inbound deliver_sm (4.6) from a customer, long texts as UDH parts; `deliver` waits for the
  deliver_sm_resp and returns its command_status.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import struct
from dataclasses import dataclass, field

from tests.rig import free_port

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|", 0x65: "€"}
_GSM_REVERSE = {ch: bytes([i]) for i, ch in enumerate(GSM_BASIC) if ch != "\x1b"}
_GSM_REVERSE.update({ch: bytes([0x1B, code]) for code, ch in GSM_EXTENSION.items()})

BIND_TRANSCEIVER, SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x09, 0x04, 0x05, 0x06, 0x15
GENERIC_NACK, RESP = 0x80000000, 0x80000000
ESME_RINVCMDLEN, ESME_RINVCMDID, ESME_RINVBNDSTS = 0x02, 0x03, 0x04
ESME_RINVPASWD, ESME_RINVSYSID, ESME_RINVDSTADR, ESME_RTHROTTLED = 0x0E, 0x0F, 0x0B, 0x58


def gsm_decode(data: bytes) -> str:
    out, escape = [], False
    for byte in data:
        if escape:
            out.append(GSM_EXTENSION.get(byte, " "))
            escape = False
        elif byte == 0x1B:
            escape = True
        else:
            out.append(GSM_BASIC[byte & 0x7F])
    return "".join(out)


def gsm_encode(text: str) -> bytes:
    return b"".join(_GSM_REVERSE[ch] for ch in text)


def decode(data: bytes, data_coding: int) -> str:
    if data_coding == 8:
        return data.decode("utf-16-be")
    if data_coding == 0:
        return gsm_decode(data)
    return data.decode("latin-1")


def cstr(value: str) -> bytes:
    return value.encode("latin-1") + b"\0"


@dataclass
class Submitted:
    """One submit_sm part as the SMSC read it."""

    source: str
    source_ton: int
    source_npi: int
    destination: str
    dest_ton: int
    dest_npi: int
    esm_class: int
    data_coding: int
    registered_delivery: int
    udh: bytes
    text: str
    message_id: str = ""

    @property
    def concatenation(self) -> tuple[int, int, int] | None:
        """(reference, total, number) from an 8-bit concatenation UDH."""
        if len(self.udh) >= 6 and self.udh[1] == 0x00 and self.udh[2] == 3:
            return self.udh[3], self.udh[4], self.udh[5]
        return None


@dataclass
class Smsc:
    """The SMSC and what it saw; tests steer it through its attributes."""

    system_id: str = "omni"
    password: str = "secret"
    id_format: str = "hex"
    receipt_id_format: str = "hex"
    receipt_tlvs: bool = False
    auto_receipt: str | None = "DELIVRD"  # stat of the receipt sent after each submit (None: none)
    throttle_next: int = 0
    nack_next: int = 0  # submit_sm answered with generic_nack ESME_RSYSERR (0x08)
    invalid_numbers: set[str] = field(default_factory=set)
    resp_delay: float = 0.0
    port: int = 0
    submitted: list[Submitted] = field(default_factory=list)
    binds: int = 0
    enquire_links: int = 0
    nacks: list[int] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    throttled: int = 0

    def __post_init__(self) -> None:
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._ids = itertools.count(0x2A3B4C5D)
        self._sequence = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[int]] = {}
        self.bound = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> Smsc:
        self.port = self.port or free_port()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        await self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    async def drop(self) -> None:
        """Cut every connection without an unbind (a network fault)."""
        self.bound.clear()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    # -- the wire -----------------------------------------------------------------------------

    def _send(self, writer: asyncio.StreamWriter, command: int, status: int, sequence: int, body: bytes = b"") -> None:
        if not writer.is_closing():
            writer.write(struct.pack("!IIII", 16 + len(body), command, status, sequence) + body)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        bound = False
        try:
            while True:
                header = await reader.readexactly(16)
                length, command, status, sequence = struct.unpack("!IIII", header)
                if length < 16:
                    self.nacks.append(ESME_RINVCMDLEN)
                    self._send(writer, GENERIC_NACK, ESME_RINVCMDLEN, sequence)
                    continue
                body = await reader.readexactly(length - 16) if length > 16 else b""
                if command & RESP:
                    future = self._waiting.pop(sequence, None)
                    if future is not None and not future.done():
                        future.set_result(status)
                    continue
                if command == BIND_TRANSCEIVER:
                    system_id, password = body.split(b"\0")[:2]
                    if system_id.decode() != self.system_id:
                        self._send(writer, RESP | BIND_TRANSCEIVER, ESME_RINVSYSID, sequence, cstr("SMSC"))
                    elif password.decode() != self.password:
                        self._send(writer, RESP | BIND_TRANSCEIVER, ESME_RINVPASWD, sequence, cstr("SMSC"))
                    else:
                        bound = True
                        self.binds += 1
                        self._current = writer
                        self._send(writer, RESP | BIND_TRANSCEIVER, 0, sequence, cstr("TestSMSC"))
                        self.bound.set()
                elif command == ENQUIRE_LINK:
                    self.enquire_links += 1
                    self._send(writer, RESP | ENQUIRE_LINK, 0, sequence)
                elif not bound:
                    self._send(
                        writer, RESP | command if command in (SUBMIT_SM, UNBIND) else GENERIC_NACK, ESME_RINVBNDSTS, sequence
                    )
                elif command == SUBMIT_SM:
                    task = asyncio.create_task(self._submit(writer, sequence, body))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif command == UNBIND:
                    self._send(writer, RESP | UNBIND, 0, sequence)
                    break
                else:
                    self.nacks.append(ESME_RINVCMDID)
                    self._send(writer, GENERIC_NACK, ESME_RINVCMDID, sequence)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if writer in self._writers:
                self._writers.remove(writer)
            writer.close()

    async def _submit(self, writer: asyncio.StreamWriter, sequence: int, body: bytes) -> None:
        part = parse_submit(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.resp_delay:
                await asyncio.sleep(self.resp_delay)
            if self.nack_next > 0:
                self.nack_next -= 1
                self._send(writer, GENERIC_NACK, 0x08, sequence)
                return
            if self.throttle_next > 0:
                self.throttle_next -= 1
                self.throttled += 1
                self._send(writer, RESP | SUBMIT_SM, ESME_RTHROTTLED, sequence, b"\0")
                return
            if part.destination in self.invalid_numbers:
                self._send(writer, RESP | SUBMIT_SM, ESME_RINVDSTADR, sequence, b"\0")
                return
            number = next(self._ids)
            part.message_id = format(number, "x") if self.id_format == "hex" else str(number)
            self.submitted.append(part)
            self._send(writer, RESP | SUBMIT_SM, 0, sequence, cstr(part.message_id))
        finally:
            self.in_flight -= 1
        if self.auto_receipt and part.registered_delivery & 0x03:
            await asyncio.sleep(0.01)
            await self.receipt(part, self.auto_receipt)

    # -- what the SMSC sends ---------------------------------------------------------------------

    async def _deliver_pdu(self, body: bytes, wait: bool = True) -> int | None:
        await asyncio.wait_for(self.bound.wait(), 10)
        writer = self._writers[-1]
        sequence = next(self._sequence)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting[sequence] = future
        self._send(writer, DELIVER_SM, 0, sequence, body)
        if not wait:
            return None
        return await asyncio.wait_for(future, 10)

    async def receipt(self, part: Submitted, stat: str = "DELIVRD", err: str = "000") -> int | None:
        """A delivery receipt for a submitted part, its id in `receipt_id_format`."""
        number = int(part.message_id, 16) if self.id_format == "hex" else int(part.message_id)
        rid = format(number, "x") if self.receipt_id_format == "hex" else str(number)
        text = f"id:{rid} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} submit date:2611301015 done date:2611301016 stat:{stat} err:{err} text:{part.text[:20]}"
        tlvs = b""
        if self.receipt_tlvs:
            states = {"DELIVRD": 2, "EXPIRED": 3, "UNDELIV": 5, "REJECTD": 8}
            tlvs = struct.pack("!HH", 0x001E, len(rid) + 1) + cstr(rid) + struct.pack("!HHB", 0x0427, 1, states[stat])
            text = ""
        body = deliver_body(part.destination, part.source, 0x04, 0, text.encode("ascii", errors="replace")) + tlvs
        return await self._deliver_pdu(body)

    async def deliver(
        self,
        source: str,
        text: str,
        *,
        to: str = "4444",
        smsc_time: str = "",
        parts: int = 0,
        reference: int = 0x42,
        order: list[int] | None = None,
        wait: bool = True,
    ) -> list[int | None]:
        """A customer's SMS (in `parts` UDH parts when given); the deliver_sm_resp statuses."""
        coding = 0
        try:
            data = gsm_encode(text)
        except KeyError:
            coding, data = 8, text.encode("utf-16-be")
        if not parts:
            return [await self._deliver_pdu(deliver_body(source, to, 0, coding, data, smsc_time), wait)]
        unit = 2 if coding == 8 else 1
        size = -(-len(data) // unit // parts) * unit
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        results = []
        for number in order or range(1, len(chunks) + 1):
            udh = bytes([5, 0, 3, reference, len(chunks), number])
            results.append(
                await self._deliver_pdu(deliver_body(source, to, 0x40, coding, udh + chunks[number - 1], smsc_time), wait)
            )
        return results

    async def send_raw(self, command: int, body: bytes = b"") -> int:
        """Any request PDU; the status of the answer (generic_nack included)."""
        return await self._deliver_pdu_command(command, body)

    async def _deliver_pdu_command(self, command: int, body: bytes) -> int:
        await asyncio.wait_for(self.bound.wait(), 10)
        sequence = next(self._sequence)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting[sequence] = future
        self._send(self._writers[-1], command, 0, sequence, body)
        return await asyncio.wait_for(future, 10)

    def texts(self) -> list[str]:
        """The texts of whole messages, concatenated parts joined by their UDH."""
        joined: dict[tuple[str, int], dict[int, str]] = {}
        out: list[str] = []
        for part in self.submitted:
            concat = part.concatenation
            if concat is None:
                out.append(part.text)
                continue
            ref, total, number = concat
            group = joined.setdefault((part.destination, ref), {})
            group[number] = part.text
            if len(group) == total:
                out.append("".join(group[n] for n in range(1, total + 1)))
        return out


def deliver_body(source: str, destination: str, esm_class: int, data_coding: int, data: bytes, smsc_time: str = "") -> bytes:
    ton = 1 if source.isdigit() and len(source) >= 11 else 0
    return (
        cstr("")
        + bytes([ton, 1])
        + cstr(source)
        + bytes([0, 1])
        + cstr(destination)
        + bytes([esm_class, 0, 0])
        + cstr(smsc_time)
        + cstr("")
        + bytes([0, 0, data_coding, 0, len(data)])
        + data
    )


def parse_submit(body: bytes) -> Submitted:
    index = 0

    def c() -> str:
        nonlocal index
        end = body.index(b"\0", index)
        value = body[index:end].decode("latin-1")
        index = end + 1
        return value

    def o() -> int:
        nonlocal index
        index += 1
        return body[index - 1]

    c()
    s_ton, s_npi, source = o(), o(), c()
    d_ton, d_npi, destination = o(), o(), c()
    esm_class, _, _ = o(), o(), o()
    c(), c()
    registered, _ = o(), o()
    coding, _, length = o(), o(), o()
    data = body[index : index + length]
    udh = b""
    if esm_class & 0x40:
        udh, data = data[: data[0] + 1], data[data[0] + 1 :]
    return Submitted(source, s_ton, s_npi, destination, d_ton, d_npi, esm_class, coding, registered, udh, decode(data, coding))


@contextlib.asynccontextmanager
async def running_smsc(**options):
    smsc = await Smsc(**options).start()
    try:
        yield smsc
    finally:
        await smsc.stop()
