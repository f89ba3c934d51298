"""The one signing scheme of every HTTP call omniconsole makes to someone else's server: the
`[[webhooks]]` events, the open API channel's reply callbacks, and later the rules' webhooks.

Headers on each request (documented once, in docs/openapi.yaml "Signatures"):

* `X-Omniconsole-Timestamp: <epoch seconds, an integer>`
* `X-Omniconsole-Signature-256: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>", keyed with the
  shared secret>`

A receiver recomputes the HMAC over the timestamp header, a dot and the raw body, compares in
constant time, and refuses a timestamp more than `TOLERANCE` seconds from its clock: a replayed
request carries an old timestamp, and changing it breaks the signature. (The pattern is Stripe's
and Slack's signed requests; HMAC is RFC 2104.)

Transition: the open API's callbacks also keep their older body-only header
`X-Omniconsole-Signature: sha256=<hex HMAC-SHA256 of the raw body>` (`legacy_signature`) until
integrations have moved to the timestamped one; new senders do not add it.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Omniconsole-Timestamp"
SIGNATURE_HEADER = "X-Omniconsole-Signature-256"
LEGACY_SIGNATURE_HEADER = "X-Omniconsole-Signature"
#: How far (seconds) a receiver should let a timestamp be from its own clock.
TOLERANCE = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex>`: HMAC-SHA256 keyed with `secret` over `b"<timestamp>." + body`."""
    mac = hmac.new(secret.encode("utf-8"), str(int(timestamp)).encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def legacy_signature(secret: str, body: bytes) -> str:
    """The open API's older `X-Omniconsole-Signature` value: `sha256=<hex HMAC-SHA256 of body>`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The timestamp and signature headers for one request body (`now`: epoch seconds)."""
    timestamp = int(now if now is not None else time.time())
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: str, headers: dict[str, str] | object, body: bytes, now: float | None = None, tolerance: float = TOLERANCE
) -> str | None:
    """Check a signed request as a receiver would; None when good, else why not, in words.

    `headers` is any mapping with `.get` (case-insensitive ones included)."""
    get = headers.get
    stamp = get(TIMESTAMP_HEADER) or ""
    given = get(SIGNATURE_HEADER) or ""
    if not stamp.isdigit():
        return f"no {TIMESTAMP_HEADER} header with epoch seconds"
    if abs((now if now is not None else time.time()) - int(stamp)) > tolerance:
        return f"the timestamp {stamp} is more than {tolerance:.0f} s from now (a replay?)"
    if not hmac.compare_digest(given, signature(secret, int(stamp), body)):
        return "the signature does not match the timestamp and body"
    return None
