"""VK's HTTP API for one community token, as python-telegram-bot's `Bot` is for Telegram.

`VkApi` makes method calls (`POST {api_url}/{method}` with the token and version) and turns
VK's error objects into our taxonomy with a sentence an operator can act on; it posts files to
upload servers and long-polls the Bots Long Poll server. A rejected token (error 5), seen by any
call, is remembered as `fatal` and ends whatever waits in `interruptible` (the long poll), so a
token revoked while sending takes the receive loop down with the same reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from connectors.base import ConnectorError, PermanentError, TransientError
from connectors.payload import describe

DEFAULT_API_URL = "https://api.vk.com/method"
DEFAULT_API_VERSION = "5.199"

_T = TypeVar("_T")


@dataclass(slots=True)
class LongPollServer:
    """Where and with which key to long-poll, and the `ts` VK gave with them."""

    server: str
    key: str
    ts: str


class VkApi:
    """One community token's calls to VK (https://dev.vk.com/en/reference)."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, api_version: str = DEFAULT_API_VERSION):
        self.token = token
        self.api_url = api_url.rstrip("/")
        self.api_version = api_version
        self._client: httpx.AsyncClient | None = None
        self.fatal: PermanentError | None = None
        self._fatal_event = asyncio.Event()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True)
        return self._client

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def reset(self) -> None:
        """Forget a rejected token (a new run tries again, with whatever the config holds)."""
        self.fatal = None
        self._fatal_event.clear()

    async def call(self, method: str, params: Mapping[str, Any], doing: str) -> Any:
        """One API method; returns `response` or raises our error with VK's reason in words."""
        data = {key: str(value) for key, value in params.items() if value is not None}
        data["access_token"] = self.token
        data["v"] = self.api_version
        try:
            answer = await self.client.post(f"{self.api_url}/{method}", data=data)
        except httpx.TimeoutException:
            raise TransientError(f"VK did not answer in time while {doing}") from None
        except httpx.HTTPError as exc:
            raise TransientError(f"the VK API at {self.api_url} is unavailable while {doing}: {describe(exc)}") from None
        if answer.status_code != 200:
            raise TransientError(f"the VK API at {self.api_url} is unavailable while {doing}: HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            raise TransientError(f"VK answered with something that is not JSON while {doing}") from None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            raise self.error(body["error"], method, doing)
        if not isinstance(body, dict) or "response" not in body:
            raise TransientError(f"VK gave an answer without a response while {doing}")
        return body["response"]

    def error(self, error: Mapping[str, Any], method: str, doing: str) -> ConnectorError:
        """A VK error object as our taxonomy, with a sentence an operator can act on."""
        try:
            code = int(error.get("error_code"))
        except (TypeError, ValueError):
            code = 0
        said = str(error.get("error_msg") or "").replace(self.token, "<token>")
        if code == 5:
            reason = (
                f"VK rejected the community access token ({said}); make a new one in the community's "
                "settings (Manage → API usage) and put it where token_env/token_file points"
            )
            self.fatal = PermanentError(reason)
            self._fatal_event.set()
            return self.fatal
        transient = {
            1: (f"VK had an unknown error while {doing}", None),
            6: (f"VK says too many requests per second while {doing}", 1.0),
            9: (f"VK's flood control refused {doing}: too many similar requests", 10.0),
            10: (f"VK had an internal error while {doing}", None),
            29: (f"VK's rate limit for {method} is reached", 600.0),
        }
        if code in transient:
            reason, wait = transient[code]
            return TransientError(reason, retry_after=wait)
        permanent = {
            7: f"the community token has no permission for {method} (allow it community messages, photos and documents)",
            15: f"VK denied access while {doing}: {said}",
            18: "the customer's VK page was deleted or banned",
            27: f"VK refused {method} for a community token",
            100: f"VK rejected a parameter while {doing}: {said}",
            113: "VK knows no such user",
            900: "the customer has blocked the community (it is on their blacklist)",
            901: "the customer has not allowed messages from the community",
            902: "the customer's privacy settings do not allow messages from the community",
            914: "the message is too long for VK",
            917: "the community has no access to this conversation",
        }
        if code in permanent:
            return PermanentError(permanent[code])
        return PermanentError(f"VK refused {doing}: error {code}: {said}")

    async def interruptible(self, work: Awaitable[_T]) -> _T:
        """Await `work` unless the token is rejected meanwhile (seen by a send)."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._fatal_event.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, stop):
                if not pending.done():
                    pending.cancel()
            await asyncio.gather(task, stop, return_exceptions=True)
        if task.cancelled() or not task.done():
            assert self.fatal is not None
            raise self.fatal
        return task.result()

    async def long_poll_server(self, group_id: int | None) -> LongPollServer:
        """groups.getLongPollServer: a server, a key and a ts to poll from."""
        answer = await self.call("groups.getLongPollServer", {"group_id": group_id}, "starting the long poll")
        try:
            server = str(answer["server"])
            if "://" not in server:
                server = "https://" + server
            return LongPollServer(server, str(answer["key"]), str(answer["ts"]))
        except (KeyError, TypeError):
            raise TransientError("VK's groups.getLongPollServer answer has no server, key and ts") from None

    async def poll(self, server: LongPollServer, ts: str, wait: int) -> dict[str, Any] | None:
        """One long poll of up to `wait` seconds; None when the answer is not a JSON object."""
        params = {"act": "a_check", "key": server.key, "ts": ts, "wait": wait}
        try:
            answer = await self.client.get(server.server, params=params, timeout=httpx.Timeout(wait + 15.0, connect=10.0))
        except httpx.TimeoutException:
            raise TransientError("VK's long poll server did not answer in time") from None
        except httpx.HTTPError as exc:
            raise TransientError(f"VK's long poll server is unavailable: {describe(exc)}") from None
        if answer.status_code != 200:
            raise TransientError(f"VK's long poll server is unavailable: HTTP {answer.status_code}")
        try:
            body = answer.json()
        except (ValueError, RecursionError):
            return None
        return body if isinstance(body, dict) else None

    async def post_file(self, url: str, field_name: str, name: str, data: bytes) -> dict[str, Any]:
        """POST a file to a VK upload server as multipart form data."""
        try:
            answer = await self.client.post(url, files={field_name: (name, data)}, timeout=httpx.Timeout(120.0, connect=10.0))
        except httpx.TimeoutException:
            raise TransientError(f"VK's upload server did not answer in time for {name}") from None
        except httpx.HTTPError as exc:
            raise TransientError(f"VK's upload server is unavailable for {name}: {describe(exc)}") from None
        if answer.status_code != 200:
            raise TransientError(f"VK's upload server is unavailable for {name}: HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            raise TransientError(f"VK's upload server answered {name} with something that is not JSON") from None
        if not isinstance(body, dict):
            raise TransientError(f"VK's upload server gave an unreadable answer for {name}")
        return body
