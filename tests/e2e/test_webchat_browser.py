"""The website chat end to end in a real browser: the core (a real Hub on a real Store) serves
the demo page and the widget on 127.0.0.1; headless Chromium (Debian's `chromium`, which
`.ci/run` installs) opens it, driven through the Chrome DevTools Protocol over aiohttp's
WebSocket client. A visitor types, the store has it; an operator replies, the page shows it;
a reload keeps the conversation; outside office hours the visitor leaves an e-mail; a browser
in Russian (or `data-lang="ru"`) gets the widget and the server's texts in Russian.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from connectors.webchat import WebChatConnector
from omniconsole.config import ChannelSettings, ListenerSettings, Settings
from omniconsole.core.hub import Hub
from omniconsole.models import InboxView
from omniconsole.store import Store
from tests import rig
from tests.rig import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="headless Chromium is not installed (Debian package `chromium`; .ci/run installs it)"
)

SUNDAY = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
# Reads the widget's shadow DOM: every bubble as [class, text], the status and typing lines.
READ_CHAT = """(() => {
  const root = document.getElementById('omniconsole-chat')?.shadowRoot;
  if (!root) return null;
  return {
    messages: Array.from(root.querySelectorAll('.msg')).map(n => [n.className, n.textContent]),
    notes: Array.from(root.querySelectorAll('.note')).map(n => n.textContent),
    state: root.querySelector('.state').textContent,
    typing: root.querySelector('.typing').textContent,
    offline: getComputedStyle(root.querySelector('.offline')).display !== 'none',
    offlineText: root.querySelector('.offline-text').textContent,
    elements: root.querySelectorAll('.list *').length,
    injected: root.querySelectorAll('.list img, .list b, .list script').length + (window.pwned ? 100 : 0),
  };
})()"""


async def until(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 10.0) -> Any:
    """Poll an async probe until it returns something truthy; fail saying `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.05)


class DevTools:
    """A minimal Chrome DevTools Protocol client: one browser connection, page sessions."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            message = json.loads(frame.data)
            future = self.pending.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(AssertionError(f"DevTools: {message['error']}"))
                else:
                    future.set_result(message.get("result", {}))

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[number] = future
        await self.ws.send_str(
            json.dumps({"id": number, "method": method, "params": params, **({"sessionId": session} if session else {})})
        )
        return await asyncio.wait_for(future, 15)

    async def close(self) -> None:
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)
        await self.ws.close()


class Page:
    """One browser tab."""

    def __init__(self, tools: DevTools, session: str):
        self.tools = tools
        self.session = session

    async def evaluate(self, expression: str) -> Any:
        result = await self.tools.call(
            "Runtime.evaluate", self.session, expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"the page threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def chat(self) -> dict[str, Any] | None:
        return await self.evaluate(READ_CHAT)

    async def type_into(self, selector: str, text: str) -> None:
        """Focus a field in the widget and type as a person does (text, then Enter)."""
        await self.evaluate(
            f"document.getElementById('omniconsole-chat').shadowRoot.querySelector({json.dumps(selector)}).focus()"
        )
        await self.tools.call("Input.insertText", self.session, text=text)
        for kind in ("keyDown", "keyUp"):
            await self.tools.call(
                "Input.dispatchKeyEvent",
                self.session,
                type=kind,
                key="Enter",
                code="Enter",
                windowsVirtualKeyCode=13,
                nativeVirtualKeyCode=13,
                **({"text": "\r"} if kind == "keyDown" else {}),
            )


@contextlib.asynccontextmanager
async def browser(tmp_path: Path, *flags: str) -> AsyncIterator[DevTools]:
    """Headless Chromium with `flags` added (`--accept-lang=ru-RU,ru` sets navigator.languages)."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        *flags,
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    session: aiohttp.ClientSession | None = None
    tools: DevTools | None = None
    drain: asyncio.Task[None] | None = None
    try:
        said: list[str] = []
        url = None
        deadline = time.monotonic() + 30
        while url is None:
            line = await asyncio.wait_for(process.stderr.readline(), max(0.1, deadline - time.monotonic()))
            if not line:
                raise AssertionError("Chromium exited before it listened for DevTools:\n" + "".join(said))
            said.append(line.decode(errors="replace"))
            found = re.search(rb"DevTools listening on (ws://\S+)", line)
            url = found[1].decode() if found else None
        # Keep reading its chatter so a full pipe never blocks the browser.
        drain = asyncio.create_task(_drain(process.stderr))
        session = aiohttp.ClientSession()
        tools = DevTools(await session.ws_connect(url, max_msg_size=0))
        yield tools
    finally:
        if tools is not None:
            await tools.close()
        if session is not None:
            await session.close()
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def open_page(tools: DevTools, url: str) -> Page:
    target = await tools.call("Target.createTarget", url=url)
    attached = await tools.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
    page = Page(tools, attached["sessionId"])
    await tools.call("Runtime.enable", page.session)
    await tools.call("Page.enable", page.session)
    return page


@contextlib.asynccontextmanager
async def running_core(tmp_path: Path, store: Store, port: int, **factory: Any) -> AsyncIterator[Hub]:
    settings = Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        channels=[ChannelSettings("webchat", "webchat", {"secret": "e2e-secret-for-the-browser-test", "poll_seconds": 10})],
        listener=ListenerSettings(port=port),
    )
    async with rig.running_core(settings, store, until_up=None, listen_timeout=10, **factory) as hub:
        yield hub


async def test_a_visitor_chats_with_an_operator_in_a_real_browser(tmp_path: Path) -> None:
    port = free_port()
    store = await Store.open(tmp_path / "core.db")
    try:
        async with running_core(tmp_path, store, port), browser(tmp_path) as tools:
            page = await open_page(tools, f"http://127.0.0.1:{port}/hooks/webchat/demo")
            await until(page.chat, "the widget appears on the demo page")
            await page.evaluate("document.getElementById('omniconsole-chat').shadowRoot.querySelector('.btn').click()")
            await until(lambda: _has(page, "state", "We're online"), "the widget opens and says we are online")

            question = "Where is order 4711? <img src=x onerror=window.pwned=1>"
            await page.type_into(".input", question)

            async def stored() -> list[str]:
                rows = await store.inbox_page(InboxView.ALL)
                return [e.body for r in rows for e in await store.timeline(r.conversation_id) if e.direction == "in"]

            assert await until(stored, "the visitor's message reaches the store") == [question]
            chat = await until(lambda: _confirmed(page), "the page shows the message as sent")
            assert chat["messages"] == [["msg visitor", question]]

            [row] = await store.inbox_page(InboxView.ALL)
            await store.set_presence("alice", row.conversation_id, typing=True)
            await until(lambda: _has(page, "typing", "Operator is typing…"), "the page shows the operator typing")

            reply = "Tomorrow <b>morning</b> </script><script>window.pwned=1</script>"
            reply_id = await store.queue_reply(row.conversation_id, reply, "alice")
            await store.set_presence("alice", row.conversation_id, typing=False)
            chat = await until(lambda: _shows(page, reply), "the operator's reply appears on the page")
            assert chat["messages"] == [["msg visitor", question], ["msg operator", reply]]
            await until(lambda: _has(page, "typing", ""), "the typing line clears")
            assert chat["injected"] == 0, "customer or operator text became HTML"

            async def delivered() -> bool:
                return any(e.id == reply_id and e.state == "delivered" for e in await store.timeline(row.conversation_id))

            await until(delivered, "the reply is recorded as delivered")

            # A reload: the session token is in localStorage, the history comes back from the log.
            await tools.call("Page.reload", page.session)
            chat = await until(lambda: _shows(page, reply), "the conversation is back after a reload")
            assert chat["messages"] == [["msg visitor", question], ["msg operator", reply]]
            assert chat["injected"] == 0
            second = "Thanks!"
            await page.type_into(".input", second)
            assert await until(lambda: _stored_has(store, second), "the reloaded page still writes as the same visitor")
            customers = await store.db.run(lambda c: c.execute("SELECT count(*) FROM customers").fetchone()[0])
            assert customers == 1
    finally:
        await store.close()


async def test_outside_office_hours_the_visitor_leaves_an_email_in_a_real_browser(tmp_path: Path) -> None:
    port = free_port()
    store = await Store.open(tmp_path / "core.db")

    def on_sunday(channel: ChannelSettings, context: Any) -> WebChatConnector:
        # Office hours on a Sunday: the same channel, with hours and a clock that says so.
        weekdays = dataclasses.replace(context, settings={**context.settings, "hours": "Mon-Fri 09:00-18:00"})
        return WebChatConnector(weekdays, clock=lambda: SUNDAY)

    try:
        async with running_core(tmp_path, store, port, connector_factory=on_sunday), browser(tmp_path) as tools:
            page = await open_page(tools, f"http://127.0.0.1:{port}/hooks/webchat/demo")
            await until(page.chat, "the widget appears on the demo page")
            await page.evaluate("document.getElementById('omniconsole-chat').shadowRoot.querySelector('.btn').click()")
            chat = await until(lambda: _has(page, "state", "We're offline"), "the widget says we are offline")
            assert chat["offline"] and "answer by e-mail" in chat["offlineText"]
            await page.type_into(".input", "Do you ship to Kazan?")
            assert await until(lambda: _stored_has(store, "Do you ship to Kazan?"), "the message is stored while offline")
            await page.type_into(".contact-input", "Visitor@Example.com")
            chat = await until(lambda: _note(page, "we'll answer at Visitor@Example.com"), "the widget thanks the visitor")

            async def identities() -> list[tuple[str, str]]:
                return await store.db.run(lambda c: c.execute("SELECT kind, address FROM identities ORDER BY kind").fetchall())

            found = await until(lambda: _has_email(identities), "the e-mail becomes the visitor's identity")
            assert [kind for kind, _ in found] == ["email", "web"]
    finally:
        await store.close()


# The widget's own words: the button, the box's title, the fields' placeholders and buttons.
READ_WORDS = """(() => {
  const root = document.getElementById('omniconsole-chat')?.shadowRoot;
  if (!root) return null;
  return {
    lang: document.getElementById('omniconsole-chat').lang,
    button: root.querySelector('.btn').textContent,
    title: root.querySelector('.title').textContent,
    placeholder: root.querySelector('.input').placeholder,
    send: root.querySelector('.row .send').textContent,
    contact: root.querySelector('.contact-input').placeholder,
    ok: root.querySelector('.contact .send').textContent,
    state: root.querySelector('.state').textContent,
  };
})()"""
RUSSIAN_WORDS = {
    "lang": "ru",
    "button": "Чат",
    "title": "Напишите нам",
    "placeholder": "Напишите сообщение…",
    "send": "Отправить",
    "contact": "ваш e-mail (или телефон)",
    "ok": "ОК",
}
ENGLISH_WORDS = {
    "lang": "en",
    "button": "Chat",
    "title": "Chat with us",
    "placeholder": "Type a message…",
    "send": "Send",
    "contact": "your e-mail (or phone)",
    "ok": "OK",
}


async def _words(page: Page, state: str) -> dict[str, Any] | None:
    words = await page.evaluate(READ_WORDS)
    return words if words and words["state"] == state else None


def _sunday_hours(channel: ChannelSettings, context: Any) -> WebChatConnector:
    weekdays = dataclasses.replace(context, settings={**context.settings, "hours": "Mon-Fri 09:00-18:00"})
    return WebChatConnector(weekdays, clock=lambda: SUNDAY)


async def test_a_browser_in_russian_gets_the_chat_in_russian(tmp_path: Path) -> None:
    """navigator.languages ru-RU: the widget's words, the server's title and offline note, the
    thanks for a contact and the contact line stored are Russian; the messages say `ru`."""
    port = free_port()
    store = await Store.open(tmp_path / "core.db")
    try:
        async with (
            running_core(tmp_path, store, port, connector_factory=_sunday_hours),
            browser(tmp_path, "--accept-lang=ru-RU,ru") as tools,
        ):
            page = await open_page(tools, f"http://127.0.0.1:{port}/hooks/webchat/demo")
            await until(page.chat, "the widget appears on the demo page")
            await page.evaluate("document.getElementById('omniconsole-chat').shadowRoot.querySelector('.btn').click()")
            words = await until(lambda: _words(page, "Сейчас мы не в сети"), "the widget says we are offline in Russian")
            assert {k: v for k, v in words.items() if k != "state"} == RUSSIAN_WORDS
            chat = await page.chat()
            assert chat["offline"] and chat["offlineText"] == "Сейчас мы не в сети. Оставьте e-mail — мы ответим вам на почту."
            await page.type_into(".input", "Вы доставляете в Казань?")
            assert await until(lambda: _stored_has(store, "Вы доставляете в Казань?"), "the message is stored")
            await page.type_into(".contact-input", "Visitor@Example.com")
            await until(lambda: _note(page, "Спасибо! Мы ответим на Visitor@Example.com."), "the widget thanks in Russian")
            line = "Мой e-mail Visitor@Example.com"
            assert await until(lambda: _stored_has(store, line), "the contact line is stored in Russian")
            metas = await store.db.run(
                lambda c: [json.loads(r[0]) for r in c.execute("SELECT meta FROM messages WHERE direction = 'in' ORDER BY id")]
            )
            assert [m.get("language") for m in metas] == ["ru", "ru"]
    finally:
        await store.close()


async def test_the_chat_is_english_by_default_and_data_lang_makes_it_russian(tmp_path: Path) -> None:
    """A browser in a language the chat does not speak (German) gets English; the same page with
    `data-lang="ru"` on the script tag gets Russian, and the server's title follows."""
    port = free_port()
    store = await Store.open(tmp_path / "core.db")
    try:
        async with running_core(tmp_path, store, port), browser(tmp_path, "--accept-lang=de-DE,de") as tools:
            page = await open_page(tools, f"http://127.0.0.1:{port}/hooks/webchat/demo")
            await until(page.chat, "the widget appears on the demo page")
            await page.evaluate("document.getElementById('omniconsole-chat').shadowRoot.querySelector('.btn').click()")
            words = await until(lambda: _words(page, "We're online"), "the widget says we are online in English")
            assert {k: v for k, v in words.items() if k != "state"} == ENGLISH_WORDS
            # The shop's page puts data-lang="ru" on the tag: a fresh widget in Russian.
            await page.evaluate(
                "(() => { localStorage.clear(); document.getElementById('omniconsole-chat').remove();"
                " window.omniconsoleChat = false; const s = document.createElement('script');"
                " s.src = document.querySelector('script[src$=\"widget.js\"]').src;"
                " s.setAttribute('data-lang', 'ru'); s.setAttribute('data-open', 'true');"
                " document.body.appendChild(s); })()"
            )
            words = await until(lambda: _words(page, "Мы на связи"), "the data-lang widget says we are online in Russian")
            assert {k: v for k, v in words.items() if k != "state"} == RUSSIAN_WORDS
    finally:
        await store.close()


async def _has(page: Page, key: str, text: str) -> dict[str, Any] | None:
    chat = await page.chat()
    return chat if chat and chat[key] == text else None


async def _confirmed(page: Page) -> dict[str, Any] | None:
    chat = await page.chat()
    return chat if chat and chat["messages"] and not any("pending" in c for c, _ in chat["messages"]) else None


async def _shows(page: Page, text: str) -> dict[str, Any] | None:
    chat = await page.chat()
    return chat if chat and any(t == text for _, t in chat["messages"]) else None


async def _note(page: Page, text: str) -> dict[str, Any] | None:
    chat = await page.chat()
    return chat if chat and any(text in n for n in chat["notes"]) else None


async def _stored_has(store: Store, body: str) -> bool:
    return bool(await store.db.run(lambda c: c.execute("SELECT 1 FROM messages WHERE body = ?", (body,)).fetchone()))


async def _has_email(identities: Callable[[], Awaitable[list[tuple[str, str]]]]) -> list[tuple[str, str]] | None:
    found = await identities()
    return found if ("email", "visitor@example.com") in [tuple(r) for r in found] else None


async def test_the_bot_answers_with_buttons_and_a_press_resolves_in_a_real_browser(tmp_path: Path) -> None:
    """The widget draws the bot's "Did this help?" buttons under its answer; pressing one
    sends its title as the visitor's words and its id to the bot, which resolves the issue."""
    from omniconsole.answers.bot_turn import conversation_pipeline
    from omniconsole.answers.library import DEMO_LIBRARY, import_folder
    from omniconsole.store.bot import BotStore

    port = free_port()
    store = await Store.open(tmp_path / "core.db")
    await import_folder(store, DEMO_LIBRARY, "test")
    settings = Settings(
        database=tmp_path / "core.db",
        data_dir=tmp_path / "data",
        listener=ListenerSettings(port=port),
        channels=[
            ChannelSettings(
                "webchat",
                "webchat",
                {"secret": "e2e-secret-for-the-browser-test", "poll_seconds": 10, "bot": "answer", "bot_name": "Shop bot"},
            )
        ],
    )
    try:
        async with (
            rig.running_core(settings, store, until_up=None, listen_timeout=10, pipeline=conversation_pipeline(settings, store)),
            browser(tmp_path) as tools,
        ):
            page = await open_page(tools, f"http://127.0.0.1:{port}/hooks/webchat/demo")
            await until(page.chat, "the widget appears on the demo page")
            await page.evaluate("document.getElementById('omniconsole-chat').shadowRoot.querySelector('.btn').click()")
            await page.type_into(".input", "how much does delivery cost and how long does delivery take?")
            read_buttons = (
                "Array.from(document.getElementById('omniconsole-chat').shadowRoot.querySelectorAll('.choice'))"
                ".map(b => [b.textContent, b.getAttribute('data-button'), b.disabled])"
            )

            async def buttons() -> list[list[Any]]:
                return await page.evaluate(read_buttons)

            shown = await until(buttons, "the bot's answer comes with its buttons")
            assert shown == [["Yes, thanks", "bot:yes", False], ["No", "bot:no", False]]
            chat = await page.chat()
            assert "Did this help?" in chat["messages"][-1][1] and chat["injected"] == 0
            await page.evaluate("document.getElementById('omniconsole-chat').shadowRoot.querySelector('.choice').click()")

            async def confirmed():
                rows = await store.inbox_page(InboxView.RESOLVED)
                state = await BotStore(store).load(rows[0].conversation_id) if rows else None
                return state if state is not None and state.outcome == "confirmed" else None

            await until(confirmed, "the press resolves the conversation as bot-resolved (confirmed)")
            assert all(disabled for _, _, disabled in await buttons())
            assert await until(lambda: _shows_part(page, "Glad it helped"), "the bot's thanks appears")
    finally:
        await store.close()


async def _shows_part(page: Page, text: str) -> dict[str, Any] | None:
    chat = await page.chat()
    return chat if chat and any(text in t for _, t in chat["messages"]) else None
