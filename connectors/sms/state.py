"""What an SMS channel remembers between restarts, kept as the channel's cursor: the core
stores it in the same transaction as the messages it covers (`InboundSink.deliver`), so
"stored" and "remembered" can never disagree after a crash.

* `recent`: inbound messages of the last `redelivery_window` seconds by a key of their source,
  text and SMSC time, with the external id each was stored under: a deliver_sm delivered
  again (our answer was lost) is stored under the same id, which the core keeps once.
* `parts`: parts of long inbound messages still waiting for their siblings (already answered,
  so the SMSC will not send them again).
* `opt_out`: numbers (E.164) that texted an opt-out word, with when and which word.
* `day`/`sent`: how many messages went out today (server's local date), for the daily limit.
* `receipts`: how this SMSC writes message ids in receipts (see `parts.ReceiptIds`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any


def message_key(source: str, text: str, smsc_time: str) -> str:
    """What identifies one inbound SMS when the SMSC gives no id: sender, text, SMSC time."""
    return hashlib.sha256(f"{source}\0{text}\0{smsc_time}".encode()).hexdigest()[:24]


@dataclass(slots=True)
class SmsState:
    """The channel's memory (see the module docstring); `cursor()` is its JSON."""

    recent: dict[str, tuple[str, float]] = field(default_factory=dict)
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)
    opt_out: dict[str, str] = field(default_factory=dict)
    day: str = ""
    sent: int = 0
    receipts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> SmsState:
        """The state a cursor holds; an empty state for None or a cursor we cannot read."""
        try:
            data = json.loads(cursor) if cursor else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        recent = {
            str(k): (str(v[0]), float(v[1]))
            for k, v in dict(data.get("recent") or {}).items()
            if isinstance(v, list) and len(v) == 2
        }
        return cls(
            recent=recent,
            parts={str(k): v for k, v in dict(data.get("parts") or {}).items() if isinstance(v, dict)},
            opt_out={str(k): str(v) for k, v in dict(data.get("opt_out") or {}).items()},
            day=str(data.get("day") or ""),
            sent=int(data.get("sent") or 0),
            receipts=dict(data.get("receipts") or {}),
        )

    def cursor(self, window: float, now: float | None = None) -> str:
        """The JSON to store, without journal entries older than `window` seconds."""
        now = time.time() if now is None else now
        self.recent = {k: v for k, v in self.recent.items() if now - v[1] <= window}
        return json.dumps(
            {
                "v": 1,
                "recent": {k: list(v) for k, v in self.recent.items()},
                "parts": self.parts,
                "opt_out": self.opt_out,
                "day": self.day,
                "sent": self.sent,
                "receipts": self.receipts,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    def sent_today(self, today: str) -> int:
        """Messages sent on `today` (YYYY-MM-DD)."""
        if self.day != today:
            self.day, self.sent = today, 0
        return self.sent
