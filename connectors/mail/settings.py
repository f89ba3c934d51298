"""E-mail channel settings: one mailbox's `[[channels]]` options, checked and completed, and
the rules about encryption (plain text only to this machine; a failed TLS handshake explained
in words, as a permanent fault, because a retry meets the same certificate).
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiosmtplib

from connectors.base import N_, PermanentError

SECURITY_MODES = ("tls", "starttls", "plain")
_DEFAULT_IMAP_PORTS = {"tls": 993, "starttls": 143, "plain": 143}
_DEFAULT_SMTP_PORTS = {"tls": 465, "starttls": 587, "plain": 25}
# RFC 2177: servers may drop an IDLE after 30 minutes of silence; stay well inside it.
MAX_IDLE_SECONDS = 29 * 60


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
                raise PermanentError(N_("e-mail option {key} must be text (got {value!r})"), key=key, value=value)
            return value.strip()

        def security(key: str) -> str:
            value = text(key, "tls").lower()
            if value not in SECURITY_MODES:
                raise PermanentError(
                    N_("e-mail option {key} must be one of tls, starttls, plain (got {value!r})"), key=key, value=value
                )
            return value

        def number(key: str, default: float) -> float:
            value = options.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise PermanentError(N_("e-mail option {key} must be a positive number (got {value!r})"), key=key, value=value)
            return float(value)

        address = text("address")
        if "@" not in address:
            raise PermanentError(
                N_("e-mail option address must be the mailbox's address, such as support@example.com (got {value!r})"),
                value=address,
            )
        imap_host = text("imap_host")
        if not imap_host:
            raise PermanentError(N_("e-mail option imap_host is missing"))
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


def refuse_plain(protocol: str, host: str, security: str) -> None:
    if security == "plain" and not is_loopback(host):
        raise PermanentError(
            f'{protocol}_security = "plain" would send the password unencrypted to {host}; plain is allowed only '
            f'for a server on this machine (127.0.0.1). Use "tls" or "starttls".'
        )


# OpenSSL's verify codes for "the certificate is fine but names another host".
_NAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
# ... and for "nobody we trust signed it", which tls_ca_path is there to answer.
_UNKNOWN_ISSUER = {18, 19, 20, 21}  # self-signed, self-signed in chain, issuer unknown, cannot verify


def tls_error(exc: BaseException | None, where: str, host: str, protocol: str) -> PermanentError | None:
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


def smtp_setup_error(exc: BaseException, where: str, host: str) -> PermanentError | None:
    """The SMTP failures that are the configuration's, not the network's: a certificate we do
    not trust, TLS on the wrong port, or STARTTLS asked of a server that does not offer it
    (aiosmtplib raises a bare SMTPException for that, recognisable only by its words)."""
    tls = tls_error(exc, where, host, "smtp")
    if tls is not None:
        return tls
    if type(exc) is aiosmtplib.SMTPException and "STARTTLS extension not supported" in str(exc):
        return PermanentError(f'the mail server {where} does not offer STARTTLS; use smtp_security = "tls" (port 465)')
    return None
