"""Buttons on every channel (connectors/base.py `Button`): drawn by the channel's own means and
pressed back as a "button" message, each against its peer on 127.0.0.1 — VK's inline keyboard
(a press is a message with our payload), WhatsApp's reply buttons (up to 3) and list (up to
10); elsewhere the core sends a numbered list and the customer's number maps back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.base import Button, OutboundMessage, button_for_number, numbered_buttons
from omniconsole.models import IdentityKind
from tests.connectors import test_vk as vk_tests
from tests.connectors import test_whatsapp as wa_tests
from tests.peers.graph_api import FakeGraphApi
from tests.peers.vk_api import FakeVkApi

YES_NO = (Button("bot:yes", "Да, спасибо"), Button("bot:no", "Нет"))


def test_a_button_is_checked_against_the_channels_limits() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        Button("я" * 33, "ok")  # 66 bytes of UTF-8
    with pytest.raises(ValueError, match="20 characters"):
        Button("x", "a title far too long for WhatsApp")
    Button("b" * 64, "t" * 20)


def test_numbered_list_and_the_number_back() -> None:
    text = numbered_buttons("Это помогло?", YES_NO)
    assert text == "Это помогло?\n\n1 — Да, спасибо\n2 — Нет"
    assert button_for_number(" 2. ", YES_NO) == YES_NO[1]
    assert button_for_number("1", YES_NO) == YES_NO[0]
    assert button_for_number("3", YES_NO) is None and button_for_number("12 дней", YES_NO) is None


# -- VK ---------------------------------------------------------------------------------------


@pytest.fixture
def vk() -> FakeVkApi:
    with FakeVkApi() as server:
        server.add_user(1001, "Иван", "Петров", "ivanp")
        yield server


async def test_vk_draws_an_inline_keyboard_and_a_press_comes_back_as_a_button(vk: FakeVkApi, tmp_path: Path) -> None:
    vk.push_message(1001, "сколько стоит доставка?")
    message = OutboundMessage(
        id=7, conversation_id=1, identity_kind=IdentityKind.VK, address="1001", body="Доставка: 1–2 дня.", buttons=YES_NO
    )
    await vk_tests.send(vk, tmp_path, message)
    [posted] = vk.sent(1001)
    rows = posted["keyboard"]["buttons"]
    assert posted["keyboard"]["inline"] is True
    assert [(r[0]["action"]["label"], json.loads(r[0]["action"]["payload"])) for r in rows] == [
        ("Да, спасибо", {"b": "bot:yes"}),
        ("Нет", {"b": "bot:no"}),
    ]
    pressed = await vk_tests.receive_one(vk, tmp_path, "Нет", payload=json.dumps({"b": "bot:no"}))
    assert "button" in pressed.flags and pressed.meta["button"] == "bot:no" and pressed.body == "Нет"


async def test_vk_start_button_is_still_a_start(vk: FakeVkApi, tmp_path: Path) -> None:
    pressed = await vk_tests.receive_one(vk, tmp_path, "Начать", payload='{"command":"start"}')
    assert "start" in pressed.flags and "button" not in pressed.flags


# -- WhatsApp ---------------------------------------------------------------------------------


@pytest.fixture
def graph() -> FakeGraphApi:
    with FakeGraphApi() as server:
        yield server


async def test_whatsapp_sends_reply_buttons_up_to_three_and_a_list_beyond(graph: FakeGraphApi, tmp_path: Path) -> None:
    connector = wa_tests.make_connector(graph, tmp_path)
    many = tuple(Button(f"bot:a:article-{n}", f"Статья {n}") for n in range(5))
    try:
        await connector.send(wa_tests.outbound("Это помогло?", buttons=YES_NO))
        await connector.send(wa_tests.outbound("Возможно, поможет:", id=2, buttons=many))
    finally:
        await connector.close()
    first, second = graph.calls_of("messages")
    assert first.params["type"] == "interactive"
    assert first.params["interactive"] == {
        "type": "button",
        "body": {"text": "Это помогло?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "bot:yes", "title": "Да, спасибо"}},
                {"type": "reply", "reply": {"id": "bot:no", "title": "Нет"}},
            ]
        },
    }
    assert second.params["interactive"]["type"] == "list"
    rows = second.params["interactive"]["action"]["sections"][0]["rows"]
    assert [r["id"] for r in rows] == [b.id for b in many]


async def test_whatsapp_long_text_goes_first_and_the_buttons_under_the_last_part(graph: FakeGraphApi, tmp_path: Path) -> None:
    connector = wa_tests.make_connector(graph, tmp_path)
    try:
        await connector.send(wa_tests.outbound("x" * 1500 + "\n" + "y" * 100, buttons=YES_NO))
    finally:
        await connector.close()
    calls = graph.calls_of("messages")
    assert [c.params["type"] for c in calls] == ["text", "interactive"]


@pytest.mark.parametrize(("reply_kind", "title"), [("button_reply", "Нет"), ("list_reply", "Статья 3")])
async def test_whatsapp_a_press_comes_back_as_a_button(graph: FakeGraphApi, tmp_path: Path, reply_kind: str, title: str) -> None:
    async with wa_tests.wired(graph, tmp_path) as rig:
        item = rig.meta.message(wa_tests.IVAN, "interactive", type=reply_kind, **{reply_kind: {"id": "bot:no", "title": title}})
        [pressed] = await wa_tests.receive(rig, item)
    assert "button" in pressed.flags and pressed.meta["button"] == "bot:no" and pressed.body == title
