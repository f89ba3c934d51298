"""The window's routing parts (issue #18) with Textual's Pilot, each test twice: in-process and
as a team window whose every call goes to a core over its Unix socket (`make_window`). The
window sets its operator online when it opens and offline when it closes, `S` toggles away, the
status bar shows my status and load, `A` lists operators with status and load, `Q` shows the
queues with counts and the longest wait and stays live, and j/k move in dialog lists. Two
windows of one operator keep a heartbeat slot each; an agent sets only their own status."""

from __future__ import annotations

import sqlite3

from textual.widgets import OptionList

from omniconsole.routing.service import set_operator
from omniconsole.store import Store
from omniconsole.tui.widgets.status_bar import StatusBar
from tests.tui.test_actions import dialog, open_conversation, settle


def status_of(shop, login: str) -> str:
    conn = sqlite3.connect(shop[0].database)
    try:
        return conn.execute("SELECT status FROM operators WHERE login = ?", (login,)).fetchone()[0]
    finally:
        conn.close()


async def test_status_follows_the_window_and_the_away_key(make_window, shop):
    app = make_window()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert status_of(shop, "alice") == "online"
        bar = str(app.screen.query_one(StatusBar).render())
        assert "online 0/5" in bar
        await pilot.press("S")
        await settle(pilot)
        assert status_of(shop, "alice") == "away"
        assert "away 0/5" in str(app.screen.query_one(StatusBar).render())
        await pilot.press("S")
        await settle(pilot)
        assert status_of(shop, "alice") == "online"
    assert status_of(shop, "alice") == "offline"  # the window closed


async def test_assign_dialog_lists_status_and_load_and_j_k_move(make_window, shop):
    ids = shop[1]
    store = await Store.open(shop[0].database)
    try:
        await set_operator(store, shop[0], "bob", actor="alice", status="online", capacity=3)
    finally:
        await store.close()
    app = make_window()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["oliver"])
        await pilot.press("A")
        await dialog(pilot, "ChoiceDialog")
        options = app.screen.query_one(OptionList)
        lines = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert lines[0].split() == ["alice", "online", "0/5"]
        assert lines[1].split() == ["bob", "online", "1/3"]  # Emma's conversation is his
        assert options.highlighted == 0
        await pilot.press("j", "j", "k")
        assert options.highlighted == 1
        await pilot.press("enter")
        await settle(pilot)
        assert (await app.store.conversation(ids["oliver"])).assignee == "bob"


async def test_queue_view_shows_counts_and_the_longest_wait_and_stays_live(make_window, shop):
    conn = sqlite3.connect(shop[0].database)
    # Waiting for a skill nobody has, so alice coming online (which serves the queues) leaves them.
    conn.execute(
        "UPDATE conversations SET queue = 'default', needs = '[\"vip\"]', queued_at = ? WHERE assignee IS NULL",
        (1_800_000_000.0 - 600,),
    )
    waiting = conn.execute("SELECT count(*) FROM conversations WHERE assignee IS NULL AND status = 'open'").fetchone()[0]
    conn.commit()
    conn.close()
    app = make_window()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("Q")
        await dialog(pilot, "QueueDialog")
        options = app.screen.query_one(OptionList)
        lines = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert lines[0] == f"default  {waiting} waiting, longest 10 min"
        assert [line.split()[:2] for line in lines[1:]] == [["alice", "online"], ["bob", "offline"]]

        # Live: bob comes online elsewhere (another process, through the store) and a waiting
        # conversation is taken; the open view follows the events log without a key.
        other = await Store.open(shop[0].database)
        try:
            await set_operator(other, shop[0], "bob", actor="admin", status="online")
            first = await other.db.run(
                lambda conn: conn.execute("SELECT id FROM conversations WHERE queue = 'default' ORDER BY id").fetchone()[0]
            )
            await other.assign(first, "bob", "admin")
        finally:
            await other.close()
        await settle(pilot, 1.0)
        lines = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert lines[0].startswith(f"default  {waiting - 1} waiting")
        assert [line.split()[:2] for line in lines[1:]] == [["alice", "online"], ["bob", "online"]]


async def test_two_windows_of_one_operator_each_keep_her_online(make_window, shop):
    first, second = make_window(), make_window()
    async with first.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        async with second.run_test(size=(160, 48)) as other:
            await settle(other)
            assert status_of(shop, "alice") == "online"
        await settle(pilot)
        assert status_of(shop, "alice") == "online"  # her first window still lives
        await first.screen.presence.beat()
        assert status_of(shop, "alice") == "online"
    assert status_of(shop, "alice") == "offline"  # the last window closed
