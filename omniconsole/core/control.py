"""The core's Unix socket: operators' windows and commands act through it in a team setup.

`omniconsole serve` (running as the service user that alone can write the database) listens on
`[team] socket`. Who is calling comes from the kernel: `SO_PEERCRED` gives the peer's uid, and
the login is `pwd.getpwuid(uid)` (socket(7)); nothing the client sends says who it is. For each
call the core looks up the method's level in `omniconsole/store/access.py`, compares it with the
caller's operator role, fills the actor parameters with the caller's login, runs the `Store`
method and answers. Root and the service user itself count as admins (they own the files anyway;
that is how the first admin is registered).

Requests and answers are frames of `omniconsole/core/frames.py`:

    -> {"id": 7, "call": "assign", "args": [...], "kwargs": {...}}
    <- {"id": 7, "ok": <value>}  or  {"id": 7, "error": {"type": "ActionError", "message": "...",
                                                     "template": "...", "params": {...}}}
    -> {"id": 8, "call": "whoami"}          <- {"id": 8, "ok": {"$map": ...}}  (login, role, operator)
    -> {"id": 9, "call": "subscribe"}       then, whenever the events log grows:
    <- {"push": "events", "last": <newest event id>}

An error's `message` is its English line; `template` and `params` (omniconsole/errors.py) let
the window translate it into its operator's language, which may not be the core's (issue #24);
a client that ignores them, or a core that does not send them, still has `message`.

Calls of one connection run concurrently (a slow search does not hold up a keystroke's read);
one bad frame closes only that connection. The socket is created `0660` with the `[team] group`
as its group, inside a directory the service manages (systemd's RuntimeDirectory).
"""

from __future__ import annotations

import asyncio
import grp
import inspect
import logging
import os
import pwd
import socket
import struct
from pathlib import Path

from omniconsole.core import frames
from omniconsole.errors import OmniError, StoreError, UsageError
from omniconsole.i18n import N_
from omniconsole.models import OperatorRole
from omniconsole.store import ActionError, Store, access

log = logging.getLogger("omniconsole.control")

#: How often the core looks for events written by others (its hub, an import) to push, seconds.
PUSH_INTERVAL = 0.03

_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket, from the kernel."""
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    return _CREDENTIALS.unpack(data)


def login_of(uid: int) -> str:
    """The Unix login of a uid (the number as text when the user has no passwd entry)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class ControlServer:
    """The core's socket server over one `Store`; `start()`, then `close()` when the core stops."""

    def __init__(
        self,
        store: Store,
        path: Path,
        *,
        group: str | None = None,
        attachments_dir: Path | None = None,
        logins=None,
    ) -> None:
        """`logins(uid) -> login` is how a peer's uid becomes a login (default: the password
        database); tests that run every window as one uid give each server its own."""
        self.store = store
        self.logins = logins or login_of
        self.attachments_dir = attachments_dir
        self.path = Path(path)
        self.group = group
        self.service_uid = os.geteuid()
        self._server: asyncio.AbstractServer | None = None
        self._subscribers: set[asyncio.StreamWriter] = set()
        self._clients: set[asyncio.StreamWriter] = set()
        self._pusher: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._roles: dict[str, str] | None = None
        self._signatures = {name: inspect.signature(getattr(Store, name)) for name in access.ROLES if hasattr(Store, name)}

    async def start(self) -> None:
        """Listen on the socket (replacing a stale one) with mode 0660 and the team's group.
        Raises UsageError when the group does not exist or the path is taken by a live core."""
        gid = None
        if self.group:
            try:
                gid = grp.getgrnam(self.group).gr_gid
            except KeyError:
                raise UsageError(
                    N_("the group {group} of [team] does not exist; create it with `groupadd {name}`"),
                    group=repr(self.group),
                    name=self.group,
                ) from None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if await _answers(self.path):
                raise UsageError(N_("another core already listens on {path}"), path=str(self.path))
            self.path.unlink()
        # Created private, then opened to the group: never a moment where anyone may connect.
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve_client, path=str(self.path))
        finally:
            os.umask(old)
        if gid is not None:
            os.chown(self.path, -1, gid)
        os.chmod(self.path, 0o660)
        self._pusher = asyncio.create_task(self._push_loop())
        log.info("core socket %s open to group %s", self.path, self.group or "(owner only)")

    async def close(self) -> None:
        """Stop listening, end every connection and remove the socket file."""
        if self._pusher is not None:
            self._pusher.cancel()
            await asyncio.gather(self._pusher, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()
            try:
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
            except TimeoutError:
                pass
            self._server = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # --- who is calling -----------------------------------------------------------------

    async def role_of(self, uid: int, login: str) -> str | None:
        """The caller's role: a registered operator's own; root and the service user (who own
        the files anyway) are otherwise admins; anyone else has none (refused)."""
        if self._roles is None:
            self._roles = {op.login: str(op.role) for op in await self.store.operators()}
        role = self._roles.get(login)
        if role is None and uid in (0, self.service_uid):
            return OperatorRole.ADMIN.value
        return role

    # --- one connection -----------------------------------------------------------------

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, uid, _ = peer_credentials(writer.get_extra_info("socket"))
        login = self.logins(uid)
        lock = asyncio.Lock()
        tasks: set[asyncio.Task] = set()
        self._clients.add(writer)

        async def send(message: dict) -> None:
            data = frames.pack(message)
            async with lock:
                writer.write(data)
                await writer.drain()

        async def answer(request: dict) -> None:
            request_id = request.get("id")
            try:
                value = await self._call(uid, login, request)
                reply = {"id": request_id, "ok": frames.encode(value)}
            except OmniError as exc:
                # The template and values let a window in another language translate the line.
                reply = {"id": request_id, "error": {"type": type(exc).__name__, "message": str(exc), **exc.carried()}}
            except Exception as exc:  # one failing call never ends the core or the connection
                log.exception("core socket: %s by %s failed", request.get("call"), login)
                reply = {
                    "id": request_id,
                    "error": {"type": "StoreError", "message": f"the core failed: {type(exc).__name__}: {exc}"},
                }
            try:
                await send(reply)
            except (ConnectionError, frames.FrameError) as exc:
                log.info("core socket: cannot answer %s: %s", login, exc)

        try:
            while True:
                request = await frames.read_frame(reader, frames.MAX_REQUEST)
                if request is None:
                    break
                if request.get("call") == "subscribe":
                    self._subscribers.add(writer)
                    await send({"id": request.get("id"), "ok": None})
                    continue
                task = asyncio.create_task(answer(request))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except frames.FrameError as exc:
            log.warning("core socket: %s sent a bad frame: %s", login, exc)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._subscribers.discard(writer)
            self._clients.discard(writer)
            for task in tasks:
                task.cancel()
            writer.close()

    async def _call(self, uid: int, login: str, request: dict):
        method = request.get("call")
        if not isinstance(method, str):
            raise access.RoleRefused(N_("a request without a method name"))
        role = await self.role_of(uid, login)
        if method == "whoami":
            operator = next((op for op in await self.store.operators() if op.login == login), None)
            return {"login": login, "role": role, "operator": operator}
        access.check(method, role or "", login)
        signature = self._signatures.get(method)
        if signature is None:
            raise ActionError(N_("{method} is not an action of the store"), method=method)
        args = frames.decode(request.get("args") or [])
        kwargs = frames.decode(request.get("kwargs") or {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ActionError(N_("a request whose arguments are not a list and a map"))
        try:
            bound = signature.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise ActionError(f"{method}: {exc}") from None
        for name in list(bound.arguments):
            if name in access.CORE_ONLY_PARAMETERS:
                raise access.RoleRefused(N_("{method}: {name} is decided by the core"), method=method, name=name)
        for name in signature.parameters:
            if name in access.ACTOR_PARAMETERS and not (name == "operator" and method in access.FILTER_OPERATOR):
                bound.arguments[name] = login
        if method == "erase_customer":
            # The files of the erased person are in the core's data directory.
            bound.arguments["attachments_dir"] = self.attachments_dir
        bound.arguments.pop("self")
        result = await getattr(self.store, method)(**bound.arguments)
        if method == "erase_customer" and self.attachments_dir is not None:
            from connectors.webchat.visitors import forget_visitor

            data_dir = self.attachments_dir.parent
            result["files_deleted"] += sum(forget_visitor(data_dir, v) for v in result.pop("web_visitors", []))
        if access.needed_level(method) != access.READ:
            if method in ("add_operator", "remove_operator"):
                self._roles = None
            self._wake.set()
        return result

    # --- pushing changes ----------------------------------------------------------------

    async def _push_loop(self) -> None:
        """Tell every subscribed window when the events log grows: at once after a write through
        the socket, within PUSH_INTERVAL after anyone else's (the hub's ingest, an import)."""
        try:
            last = await self.store.last_event_id()
        except StoreError as exc:
            log.warning("core socket: cannot read the events log: %s", exc)
            last = 0
        while True:
            try:
                async with asyncio.timeout(PUSH_INTERVAL):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                newest = await self.store.last_event_id()
            except StoreError as exc:
                log.warning("core socket: cannot read the events log: %s", exc)
                await asyncio.sleep(1)
                continue
            if newest == last:
                continue
            # Roles are read again after any change (an operator added or removed elsewhere).
            self._roles = None
            last = newest
            data = frames.pack({"push": "events", "last": newest})
            for writer in list(self._subscribers):
                try:
                    writer.write(data)
                except (ConnectionError, RuntimeError):
                    self._subscribers.discard(writer)


async def _answers(path: Path) -> bool:
    """True when a process listens on the Unix socket at `path`."""
    try:
        async with asyncio.timeout(1):
            _, writer = await asyncio.open_unix_connection(str(path))
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True
