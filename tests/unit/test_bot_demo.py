"""`omniconsole demo` runs the bot: on the demo Telegram it answers or hands off, on the demo
WhatsApp it offers answers, as a newcomer watching the demo would see."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from omniconsole.answers.bot_turn import BotStep, conversation_pipeline
from omniconsole.answers.library import DEMO_LIBRARY, import_folder
from omniconsole.core.demo import demo_settings
from omniconsole.core.hub import Hub
from omniconsole.store import Store
from tests.rig import FAST


async def test_the_demo_runs_the_bot_on_some_channels(tmp_path: Path) -> None:
    settings = demo_settings(tmp_path, rate=50)
    modes = {c.options["simulate"]: c.options.get("bot", "off") for c in settings.channels}
    assert modes["telegram"] == "answer" and modes["whatsapp"] == "suggest" and modes["email"] == "off"
    store = await Store.open(settings.database)
    try:
        await import_folder(store, DEMO_LIBRARY, "demo")
        pipeline = conversation_pipeline(settings, store)
        assert [type(step) for step in pipeline] == [BotStep]
        hub = Hub(settings, store, timing=FAST, pipeline=pipeline)
        task = asyncio.create_task(hub.run())
        try:
            deadline = time.monotonic() + 30
            kinds: set[str] = set()
            while time.monotonic() < deadline and not {"bot.answered", "bot.handoff"} <= kinds:
                await asyncio.sleep(0.2)
                kinds = {e.kind for e in await store.events_since(0, limit=100_000) if e.kind.startswith("bot.")}
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert {"bot.answered", "bot.handoff"} <= kinds, kinds
    finally:
        await store.close()
