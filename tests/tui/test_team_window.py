"""The window of a team setup when its core goes away and comes back: the status bar says so,
actions are refused with the reason, the typed reply is kept and goes out once the core is back."""

from __future__ import annotations

import dataclasses

from omniconsole.config import TeamSettings
from omniconsole.core.control import ControlServer
from omniconsole.store import Operator, Store
from omniconsole.tui.app import OmniApp
from omniconsole.tui.widgets.status_bar import StatusBar
from tests.tui.conftest import NOW
from tests.tui.test_actions import open_conversation, settle


async def test_core_down_is_said_actions_refused_and_the_draft_kept(shop, tmp_path):
    settings, ids = shop
    sock = tmp_path / "core.sock"
    store = await Store.open(settings.database)
    server = ControlServer(store, sock, logins=lambda uid: "alice")
    await server.start()
    team = dataclasses.replace(settings, team=TeamSettings(socket=sock))
    app = OmniApp(team, Operator("alice", "Alice", "admin"), clock=lambda: NOW, run_core=False)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            screen = await open_conversation(pilot, app, ids["oliver"])
            status = screen.query_one(StatusBar)
            await status.reload()
            assert "team: core" in str(status.render())
            assert not any(w.group == "core" for w in app.workers)  # no core of its own

            await server.close()
            await settle(pilot, 0.3)
            await pilot.press("r", *"We are on it", "enter")
            await settle(pilot)
            assert screen.composer.text == "We are on it"  # kept, not lost
            await status.reload()
            assert "core down" in str(status.render())

            server = ControlServer(store, sock, logins=lambda uid: "alice")
            await server.start()
            await pilot.press("enter")
            await settle(pilot, 0.5)
            assert screen.composer.text == ""
            await status.reload()
            assert "team: core" in str(status.render()) and "down" not in str(status.render())
    finally:
        await server.close()
    replies = [e for e in await store.timeline(ids["oliver"]) if e.direction == "out"]
    assert replies[-1].body == "We are on it" and replies[-1].author == "alice"
    await store.close()
