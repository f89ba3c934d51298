"""The customer card's actions in the window: suggestions, merge, dismiss, undo, edits."""

from __future__ import annotations

from connectors.base import InboundMessage
from omniconsole.core.ingest import Ingestor
from omniconsole.models import IdentityKind
from tests.tui.conftest import at
from tests.tui.test_actions import dialog, open_conversation, settle, store_of


async def _stranger_naming_ivans_email(shop) -> int:
    """A new Telegram customer who writes Ivan's e-mail address: a suggestion, not a merge."""
    store = await store_of(shop)
    try:
        channel = await store.ensure_channel("telegram", "Telegram")
        await Ingestor(store, shop[0].data_dir).ingest(
            channel,
            "telegram",
            [
                InboundMessage(
                    "t9",
                    IdentityKind.TELEGRAM,
                    "5005",
                    "это снова я, пишите на IVAN@example.com",
                    at(2),
                    sender_name="Ваня",
                )
            ],
            "9",
        )
        return await store.db.run(
            lambda c: c.execute("SELECT customer_id FROM identities WHERE kind = 'telegram' AND address = '5005'").fetchone()[0]
        )
    finally:
        await store.close()


def pane_text(screen) -> str:
    return screen.query_one("#customer")._text.plain


async def test_suggestion_is_shown_then_merged_and_undone(make_app, shop):
    ids = shop[1]
    vanya = await _stranger_naming_ivans_email(shop)
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["ivan"])
        text = pane_text(screen)
        assert "Possibly the same person" in text and "Ваня" in text
        assert "wrote the e-mail ivan@example.com, which belongs to Иван Петров" in text

        await pilot.press("m")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("enter")  # "Merge Ваня into this customer"
        await dialog(pilot, "InputDialog")
        await pilot.press("enter")  # the suggestion's reason is the merge's reason
        await settle(pilot)
        profile = await app.store.customer_profile(ids["ivan_customer"])
        assert ("telegram", "5005") in {(i.kind, i.address) for i in profile.identities}
        [merge] = profile.merges
        assert (merge.merged_id, merge.actor) == (vanya, "alice") and "wrote the e-mail" in merge.reason
        assert "Merged in" in pane_text(screen) and "Possibly the same person" not in pane_text(screen)

        await pilot.press("m")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("enter")  # "Undo the merge of Ваня"
        await settle(pilot)
        profile = await app.store.customer_profile(ids["ivan_customer"])
        assert ("telegram", "5005") not in {(i.kind, i.address) for i in profile.identities}
        assert profile.merges[0].undone_by == "alice"
        assert (await app.store.customer_profile(vanya)).id == vanya


async def test_dismissed_suggestion_goes_away_for_good(make_app, shop):
    ids = shop[1]
    await _stranger_naming_ivans_email(shop)
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_conversation(pilot, app, ids["ivan"])
        await pilot.press("m")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("down", "enter")  # "Ваня is someone else"
        await settle(pilot)
        assert (await app.store.customer_profile(ids["ivan_customer"])).suggestions == ()
        assert "Possibly the same person" not in pane_text(screen)


async def test_merge_any_customer_found_by_search(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["ivan"])
        await pilot.press("m")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press("enter")  # no suggestions: the only option is the search
        await dialog(pilot, "SearchScreen")
        await pilot.press(*"Oliver")
        await settle(pilot, 0.6)
        await pilot.press("down", "enter")
        await dialog(pilot, "InputDialog")
        await pilot.press(*"asked by phone", "enter")
        await settle(pilot)
        profile = await app.store.customer_profile(ids["ivan_customer"])
        assert profile.merges[0].reason == "asked by phone"
        assert ids["oliver"] in {c.id for c in profile.conversations}


async def test_edit_name_note_attribute_labels_and_identity(make_app, shop):
    ids = shop[1]
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_conversation(pilot, app, ids["ivan"])
        steps = [
            (0, "InputDialog", ["home", "ctrl+k", *"Иван Сергеевич Петров", "enter"]),
            (1, "TextDialog", [*"звонить после 18", "ctrl+s"]),
            (2, "ChoiceDialog", ["enter"]),  # the attributes list: "+ add an attribute"
            (3, "InputDialog", [*"b2b, vip", "enter"]),
            (4, "InputDialog", [*"8 (912) 000-11-22", "enter"]),
        ]
        for position, kind, keys in steps:
            await pilot.press("c")
            await dialog(pilot, "ChoiceDialog")
            await pilot.press(*["down"] * position, "enter")
            await dialog(pilot, kind)
            await pilot.press(*keys)
            if position == 2:
                await dialog(pilot, "InputDialog")
                await pilot.press(*"plan: gold", "enter")
            await settle(pilot)
        profile = await app.store.customer_profile(ids["ivan_customer"])
        assert (profile.display_name, profile.name_source) == ("Иван Сергеевич Петров", "operator")
        assert profile.note == "звонить после 18"
        assert profile.attributes == {"plan": "gold"}
        assert profile.labels == ("b2b", "vip")
        assert ("phone", "+79120001122") in {(i.kind, i.address) for i in profile.identities}

        # A number that is not a phone is refused in words, and nothing changes.
        await pilot.press("c")
        await dialog(pilot, "ChoiceDialog")
        await pilot.press(*["down"] * 4, "enter")
        await dialog(pilot, "InputDialog")
        await pilot.press(*"12-34", "enter")
        await settle(pilot)
        assert len((await app.store.customer_profile(ids["ivan_customer"])).identities) == len(profile.identities)
