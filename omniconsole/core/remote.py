"""The window's and the CLI's `Store` in a team setup: every method forwarded to the core's socket.

`RemoteStore` answers to the same method names as `omniconsole.store.Store` (those declared in
`omniconsole/store/access.py`), with the same arguments and the same row dataclasses back, so
the window does not know which one it holds. The core decides who is calling from the socket's
peer credentials; the actor arguments the window passes are replaced there.

When the core is down every call raises `CoreUnavailable` (a StoreError, so the window's usual
"not answering" handling applies) saying so; the next call tries to connect again. Errors the
core raised come back as the same class (`ActionError`, `RoleRefused`, `StoreError`, ...), with
the template and values the core sent, so `errors.error_text` shows them in this window's
language (an older core sends only the English line, shown as it is).
`changed` is set whenever the core pushes that the events log grew (after `subscribe()`).
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from omniconsole.core import frames
from omniconsole.errors import OmniError, StoreError, UsageError, error_phrase
from omniconsole.i18n import N_
from omniconsole.store import access
from omniconsole.store.actions import ActionError, OpenElsewhere

#: Seconds a call waits for the core's answer before it is called failed (an erase of a big
#: customer, an export, a backup of many gigabytes are the slow ones).
CALL_TIMEOUT = 600.0


class CoreUnavailable(StoreError):
    """The core does not answer on its socket (stopped, restarting, or not allowed to connect)."""


_ERRORS: dict[str, type[OmniError]] = {
    "ActionError": ActionError,
    "RoleRefused": access.RoleRefused,
    "StoreError": StoreError,
    "UsageError": UsageError,
    "FrameError": frames.FrameError,
    "OpenElsewhere": OpenElsewhere,
}


def _rebuilt(error: dict) -> OmniError:
    """The exception of a core's error answer, of the same class when this side knows it."""
    cls = _ERRORS.get(error.get("type"), StoreError)
    exc = cls.rebuilt(error.get("message") or "the core refused", error.get("template"), error.get("params"))
    if isinstance(exc, OpenElsewhere):
        exc.conversation_id = exc.params.get("id")
    return exc


class RemoteStore:
    """A `Store` whose methods run in the core, reached over `[team] socket`."""

    remote = True

    def __init__(self, socket_path: Path | str) -> None:
        self.socket_path = Path(socket_path)
        self.path = self.socket_path
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._receiver: asyncio.Task | None = None
        self._connecting = asyncio.Lock()
        self._subscribed = False
        self.changed = asyncio.Event()
        #: Why the core is not reachable now, in words; None while connected.
        self.down_reason: str | None = "not connected yet"

    @classmethod
    async def connect(cls, socket_path: Path | str) -> RemoteStore:
        """A connected client; CoreUnavailable when the core does not answer."""
        store = cls(socket_path)
        await store._ensure_connected()
        return store

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def _ensure_connected(self) -> None:
        if self.connected:
            return
        async with self._connecting:
            if self.connected:
                return
            try:
                async with asyncio.timeout(5):
                    self._reader, self._writer = await asyncio.open_unix_connection(str(self.socket_path), limit=2**20)
            except PermissionError:
                error = CoreUnavailable(
                    N_("not allowed to connect to the core's socket {path} (are you in its group?)"), path=str(self.socket_path)
                )
                self.down_reason = str(error)
                raise error from None
            except (TimeoutError, OSError) as exc:
                error = CoreUnavailable(
                    N_("the core is not running (no answer on {path}: {reason})"),
                    path=str(self.socket_path),
                    reason=getattr(exc, "strerror", None) or str(exc),
                )
                self.down_reason = str(error)
                raise error from None
            self.down_reason = None
            self._receiver = asyncio.create_task(self._receive(self._reader))
            if self._subscribed:
                await self._request("subscribe", (), {})
                self.changed.set()  # what happened while we were away is read now

    async def _receive(self, reader: asyncio.StreamReader) -> None:
        reason = "the core closed the connection"
        try:
            while True:
                message = await frames.read_frame(reader)
                if message is None:
                    break
                if message.get("push") == "events":
                    self.changed.set()
                    continue
                future = self._pending.pop(message.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(message)
        except (OmniError, ConnectionError) as exc:
            reason = f"the connection to the core broke: {exc}"
        except asyncio.CancelledError:
            reason = "the connection to the core was closed"
            raise
        finally:
            self.down_reason = reason
            if self._writer is not None:
                self._writer.close()
            self._writer = None
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CoreUnavailable(reason))
            self._pending.clear()
            self.changed.set()  # a follower waiting for pushes wakes and finds the core down

    async def _request(self, method: str, args, kwargs):
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            data = frames.pack(
                {"id": request_id, "call": method, "args": frames.encode(list(args)), "kwargs": frames.encode(dict(kwargs))}
            )
            self._writer.write(data)
            await self._writer.drain()
            async with asyncio.timeout(CALL_TIMEOUT):
                message = await future
        except (ConnectionError, AttributeError) as exc:
            raise CoreUnavailable(N_("the connection to the core broke: {error}"), error=error_phrase(exc)) from None
        except TimeoutError:
            raise CoreUnavailable(
                N_("the core did not answer {method} within {seconds} s"), method=method, seconds=f"{CALL_TIMEOUT:.0f}"
            ) from None
        finally:
            self._pending.pop(request_id, None)
        if "error" in message:
            error = message["error"] or {}
            raise _rebuilt(error)
        return frames.decode(message.get("ok"))

    async def call(self, method: str, *args, **kwargs):
        """Run one `Store` method in the core and return its value (the same types as Store's)."""
        await self._ensure_connected()
        return await self._request(method, args, kwargs)

    async def whoami(self) -> dict:
        """{"login", "role", "operator"}: who the core says this process is (from its uid)."""
        return await self.call("whoami")

    async def subscribe(self) -> None:
        """Ask the core to push every growth of the events log (sets `changed`)."""
        self._subscribed = True
        await self.call("subscribe")

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in access.ROLES or name in ("open", "close"):
            raise AttributeError(name)

        async def method(*args, **kwargs):
            return await self.call(name, *args, **kwargs)

        method.__name__ = name
        return method

    async def close(self) -> None:
        """End the connection (the core keeps running)."""
        if self._receiver is not None:
            self._receiver.cancel()
            await asyncio.gather(self._receiver, return_exceptions=True)
            self._receiver = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def __aenter__(self) -> RemoteStore:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
