"""Who a web chat visitor is, without a table: HMAC-signed session tokens bound to one channel."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable

#: A visitor id: 16 random bytes, URL-safe base64 without padding.
VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


class SessionTokens:
    """Visitor session tokens: `<visitor id>.<issued, unix s>.<HMAC-SHA256>`, bound to one
    channel, so nothing needs storing and a restart keeps every visitor signed in."""

    def __init__(self, secret: str, channel: str, max_age_days: float = 365.0, clock: Callable[[], float] = time.time):
        self._key = secret.encode("utf-8")
        self._channel = channel
        self.max_age = max_age_days * 86400
        self.clock = clock

    def _signature(self, visitor: str, issued: int) -> str:
        mac = hmac.new(self._key, f"webchat|{self._channel}|{visitor}|{issued}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def issue(self, visitor: str | None = None) -> tuple[str, str]:
        """A new visitor id (or the given one) and its token."""
        visitor = visitor or secrets.token_urlsafe(16)
        issued = int(self.clock())
        return visitor, f"{visitor}.{issued}.{self._signature(visitor, issued)}"

    def visitor(self, token: str) -> str | None:
        """The visitor a token names, or None when it is forged, damaged or expired."""
        visitor, _, rest = token.partition(".")
        issued_text, _, signature = rest.partition(".")
        if not VISITOR_ID.match(visitor) or not (issued_text.isascii() and issued_text.isdigit()) or len(issued_text) > 12:
            return None
        issued = int(issued_text)
        if not hmac.compare_digest(signature.encode(), self._signature(visitor, issued).encode()):
            return None
        if self.clock() - issued > self.max_age or issued > self.clock() + 300:
            return None
        return visitor
