"""A throwaway Dovecot IMAP server on 127.0.0.1 for connector tests.

Everything lives in a temporary directory: config, runtime state, logs and the Maildir of
one test user. Dovecot refuses to run its login and mail processes as root, so (see
/work/shared/TESTING.md) the login service runs as `dovenull` and the user's mail belongs to
`nobody:nogroup`. Tests that need it skip with a clear reason where Dovecot is not installed.

Helpers talk to the server the way a mail client would (stdlib `imaplib`, blocking, short)
or through `doveadm` for what no client can do, such as giving a folder a new UIDVALIDITY.

A second kind of server (`dovecot_tls_server`) speaks TLS the way a real provider does: an
`imaps` listener (TLS from the first byte, port 993's job) and STARTTLS on the `imap`
listener, with a throwaway self-signed certificate for localhost/127.0.0.1 that a test
trusts by handing its path to the connector as `tls_ca_path`.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "support"
PASSWORD = "secret pass"

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
{ssl_settings}
disable_plaintext_auth = no
auth_mechanisms = plain login
# No growing delay after the bad-password test: the next test logs in at once.
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
mail_location = maildir:{base}/mail/%u
first_valid_uid = 1
mail_uid = nobody
mail_gid = nogroup
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={base}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
{imaps_listener}
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


# No TLS: the plain server of most tests, which listens on the `imap` port only.
_NO_TLS = "ssl = no"
_NO_IMAPS = "    port = 0"
# `required`: the `imap` listener offers STARTTLS. Dovecot counts a connection whose two ends
# share an address as secured, so on 127.0.0.1 it still lets a client log in without TLS (the
# plain helpers below rely on that); whether a login really was encrypted is read from the log
# (`TLS` in the Login line, see `DovecotServer.logins`), not from a refusal.
_TLS = """\
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}"""
_IMAPS = """\
    address = 127.0.0.1
    port = {port}
    ssl = yes"""


@dataclass(frozen=True)
class TlsCertificate:
    """A self-signed certificate (its own CA) for `localhost` and 127.0.0.1, and its key."""

    cert: Path
    key: Path


def openssl_missing_reason() -> str | None:
    """Why a test certificate cannot be made here, or None when it can."""
    if shutil.which("openssl") is None:
        return "openssl is not installed, so no test certificate can be made (apt-get install -y openssl)"
    return None


def make_certificate(directory: Path, name: str = "localhost") -> TlsCertificate:
    """A throwaway certificate valid for one day, in `directory`. Clients check the name they
    dialled against the subjectAltName, not the CN, so for localhost it carries both names:
    the tests dial 127.0.0.1 (an IP entry) and could dial localhost (a DNS entry). Any other
    `name` gives a certificate for that name only, to see a wrong name refused."""
    alt_names = "DNS:localhost,IP:127.0.0.1" if name == "localhost" else f"DNS:{name}"
    cert, key = directory / "cert.pem", directory / "key.pem"
    done = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName={alt_names}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl could not make a test certificate: {done.stderr.decode(errors='replace')}")
    return TlsCertificate(cert=cert, key=key)


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> TlsCertificate:
    """One certificate for the session, shared by the TLS Dovecot and the TLS SMTP servers."""
    reason = openssl_missing_reason()
    if reason:
        pytest.skip(reason)
    return make_certificate(tmp_path_factory.mktemp("tls-certificate"))


def dovecot_missing_reason() -> str | None:
    """Why Dovecot tests cannot run here, or None when they can."""
    if shutil.which("dovecot") is None or shutil.which("doveadm") is None:
        return "Dovecot is not installed (apt-get install -y dovecot-imapd; .ci/run does this)"
    if os.geteuid() != 0:
        return "the throwaway Dovecot needs root to hand mail processes to nobody:nogroup"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DovecotServer:
    """A running Dovecot with one user (`USER` / `PASSWORD`) and helpers to shape its mail."""

    base: Path
    port: int
    host: str = "127.0.0.1"
    #: The `imaps` port (TLS from the first byte) when the server was started with TLS.
    tls_port: int | None = None
    #: The certificate the server presents; a client trusts it with this as its CA file.
    certificate: TlsCertificate | None = None
    user: str = USER
    password: str = PASSWORD
    _pid: int | None = None

    @property
    def config(self) -> Path:
        return self.base / "dovecot.conf"

    def doveadm(self, *args: str, stdin: bytes | None = None) -> str:
        """Run `doveadm -c CONF ...` and return its output; raises with stderr on failure."""
        done = subprocess.run(["doveadm", "-c", str(self.config), *args], input=stdin, capture_output=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace")

    @contextlib.contextmanager
    def imap(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in stdlib IMAP client, for arranging test mail."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            client.login(self.user, self.password)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Put one message into `folder` as a mail client would (IMAP APPEND)."""
        self.append_many([raw], folder)

    def append_many(self, messages: Iterable[bytes], folder: str = "INBOX") -> None:
        """Put many messages into `folder` over one connection."""
        with self.imap() as client:
            for raw in messages:
                status, data = client.append(_quoted(folder), None, None, raw)
                if status != "OK":
                    raise RuntimeError(f"APPEND to {folder} failed: {data}")

    def create_folder(self, folder: str) -> None:
        with self.imap() as client:
            client.create(_quoted(folder))

    def empty(self) -> None:
        """Remove every folder's mail (between tests sharing one server)."""
        self.doveadm("expunge", "-u", self.user, "mailbox", "*", "all")

    def uidvalidity(self, folder: str = "INBOX") -> int:
        out = self.doveadm("-f", "flow", "mailbox", "status", "-u", self.user, "uidvalidity", folder)
        return int(out.strip().split("=", 1)[1])

    def last_uid(self, folder: str = "INBOX") -> int:
        """The highest UID the folder has given out (UIDs keep counting when mail is expunged)."""
        out = self.doveadm("-f", "flow", "mailbox", "status", "-u", self.user, "uidnext", folder)
        return int(out.strip().split("=", 1)[1]) - 1

    def folder_dir(self, folder: str) -> Path:
        """The Maildir++ directory of `folder` (INBOX is the root, others are `.Name`)."""
        root = self.base / "mail" / self.user
        return root if folder.upper() == "INBOX" else root / ("." + folder.replace("/", "."))

    def change_uidvalidity(self, folder: str = "INBOX") -> int:
        """Renumber `folder` as a server does after its index is lost or rebuilt (a restore, a
        migration): the messages stay, the folder gets a new UIDVALIDITY and UIDs start again
        at 1, so old UIDs now name different messages."""
        before = self.uidvalidity(folder)
        folder_dir = self.folder_dir(folder)
        for path in folder_dir.iterdir():
            if path.name == "dovecot-uidlist" or path.name.startswith("dovecot.index"):
                path.unlink()
        for path in (self.base / "mail" / self.user).glob("dovecot.list.index*"):
            path.unlink()
        after = self.uidvalidity(folder)
        if after == before:
            raise RuntimeError(f"{folder} kept UIDVALIDITY {before}")
        return after

    def messages(self, folder: str) -> list[bytes]:
        """Every message in `folder`, in UID order."""
        with self.imap() as client:
            client.select(_quoted(folder))
            _, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
        return [part[1] for part in data if isinstance(part, tuple)]

    @property
    def pid(self) -> int:
        """The master process, read when the server starts (Dovecot removes the file as it stops)."""
        if self._pid is None:
            self._pid = int((self.base / "run" / "master.pid").read_text().strip())
        return self._pid

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logins(self) -> list[str]:
        """Dovecot's "Login:" log lines, oldest first. Each ends with how the connection was
        protected: `TLS` after a TLS handshake (imaps or STARTTLS), `secured` for plain
        loopback. The login process writes the line as it hands over, so a caller that just
        logged in may have to wait a moment for it."""
        return [line for line in self.log().splitlines() if "imap-login: Info: Login: " in line]


def _quoted(folder: str) -> str:
    """A folder name as an IMAP quoted string, non-ASCII in modified UTF-7 (RFC 3501 5.1.3)."""
    folder = re.sub(
        r"[^\x20-\x7e]+|&",
        lambda m: (
            "&-"
            if m.group() == "&"
            else "&" + base64.b64encode(m.group().encode("utf-16-be")).decode().rstrip("=").replace("/", ",") + "-"
        ),
        folder,
    )
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def start_dovecot(certificate: TlsCertificate | None = None) -> DovecotServer:
    """Start a throwaway Dovecot, with TLS (imaps and STARTTLS) when given a certificate; the
    caller stops it with `stop_dovecot`."""
    base = Path(tempfile.mkdtemp(prefix="omniconsole-dovecot-"))
    # Dovecot's mail processes run as nobody and must reach the Maildir through these paths.
    base.chmod(0o755)
    for sub in ("run", "state", "mail"):
        (base / sub).mkdir()
    shutil.chown(base / "mail", "nobody", "nogroup")
    (base / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    server = DovecotServer(base=base, port=free_port())
    ssl_settings, imaps_listener = _NO_TLS, _NO_IMAPS
    if certificate is not None:
        server.tls_port, server.certificate = free_port(), certificate
        ssl_settings = _TLS.format(cert=certificate.cert, key=certificate.key)
        imaps_listener = _IMAPS.format(port=server.tls_port)
    server.config.write_text(
        _CONFIG.format(base=base, port=server.port, ssl_settings=ssl_settings, imaps_listener=imaps_listener)
    )
    # Not capture_output: the daemon keeps inherited pipes open and run() would wait for ever.
    with open(base / "start.log", "wb") as start_log:
        done = subprocess.run(["dovecot", "-c", str(server.config)], stdout=start_log, stderr=start_log, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"dovecot did not start: {(base / 'start.log').read_text(errors='replace')}")
    deadline = time.monotonic() + 10
    for port in (server.port, server.tls_port):
        while port is not None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"dovecot did not listen on {port}:\n{server.log()}") from None
                time.sleep(0.05)
    # Dovecot may accept connections before the master has written its pid file (seen on a
    # loaded machine): wait for it, then remember the pid while the file is there.
    pid_file = base / "run" / "master.pid"
    while not pid_file.exists() or not pid_file.read_text().strip():
        if time.monotonic() > deadline:
            raise RuntimeError(f"dovecot wrote no master.pid:\n{server.log()}")
        time.sleep(0.05)
    server.pid  # noqa: B018
    return server


def _alive(pid: int) -> bool:
    # The daemon's parent is PID 1, which in a container may never reap it: a zombie
    # counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def stop_dovecot(server: DovecotServer) -> None:
    """Stop the master (its helpers follow it) and remove the directory once it is gone."""
    try:
        pid = server.pid
    except (FileNotFoundError, ValueError):
        pid = None
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(server.base, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """One Dovecot for the session; skips the test with the reason when it cannot run."""
    reason = dovecot_missing_reason()
    if reason:
        pytest.skip(reason)
    server = start_dovecot()
    try:
        yield server
    finally:
        stop_dovecot(server)


@pytest.fixture
def dovecot(dovecot_server: DovecotServer) -> DovecotServer:
    """The session's Dovecot with every folder emptied first."""
    dovecot_server.empty()
    return dovecot_server


@pytest.fixture(scope="session")
def dovecot_tls_server(tls_certificate: TlsCertificate) -> Iterator[DovecotServer]:
    """A second Dovecot for the session that speaks TLS: `tls_port` is imaps, `port` offers
    STARTTLS. Skips with the reason when Dovecot or openssl is missing."""
    reason = dovecot_missing_reason()
    if reason:
        pytest.skip(reason)
    server = start_dovecot(tls_certificate)
    try:
        yield server
    finally:
        stop_dovecot(server)


@pytest.fixture
def dovecot_tls(dovecot_tls_server: DovecotServer) -> DovecotServer:
    """The session's TLS Dovecot with every folder emptied first."""
    dovecot_tls_server.empty()
    return dovecot_tls_server
