"""What an operator does to the customer behind a conversation: edit their card (name, note,
attributes, labels, one more identity), and settle "possibly the same person" suggestions by
merging or dismissing them, or undo a merge.

A mixin of the main screen: it uses the screen's `store`, `operator`, `conversation` and `_do`.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import work

from omniconsole.errors import OmniError
from omniconsole.models import IdentityKind
from omniconsole.store import CustomerProfile
from omniconsole.tui.text import one_line, safe


class CustomerActions:
    """Customer-card actions for the main screen."""

    async def _profile(self) -> CustomerProfile | None:
        conversation = self._need_conversation()
        if conversation is None:
            return None
        try:
            return await self.store.customer_profile(conversation.customer_id)
        except OmniError as exc:
            self._store_trouble(exc)
            return None

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_edit_customer(self) -> None:
        """Edit the customer's name, note, attributes, labels, or add an identity."""
        from omniconsole.tui.screens.dialogs import ChoiceDialog, InputDialog, TextDialog

        profile = await self._profile()
        if profile is None:
            return
        options = [
            ("name", Text("Name: ").append_text(safe(one_line(profile.display_name, 50)))),
            ("note", Text("Note: ").append_text(safe(one_line(profile.note, 50) or "(none)"))),
            ("attributes", Text(f"Attributes ({len(profile.attributes)})")),
            ("labels", Text("Labels: ").append_text(safe(", ".join(profile.labels) or "(none)"))),
            ("identity", Text("Add an e-mail or phone number")),
        ]
        choice = await self.app.push_screen_wait(ChoiceDialog("Edit the customer", options))
        me, store = self.operator.login, self.store
        if choice == "name":
            typed = await self.app.push_screen_wait(InputDialog("Name", value=profile.display_name))
            if typed is not None and typed.strip():
                await self._do(store.update_customer(profile.id, me, name=typed), "Name saved")
        elif choice == "note":
            typed = await self.app.push_screen_wait(TextDialog("Note about the customer", profile.note))
            if typed is not None:
                await self._do(store.update_customer(profile.id, me, note=typed.strip()), "Note saved")
        elif choice == "labels":
            typed = await self.app.push_screen_wait(InputDialog("Customer labels (comma separated)", value=", ".join(profile.labels)))
            if typed is not None:
                await self._do(store.update_customer(profile.id, me, labels=typed.split(",")), "Labels saved")
        elif choice == "attributes":
            await self._edit_attributes(profile)
        elif choice == "identity":
            typed = await self.app.push_screen_wait(
                InputDialog("Add an e-mail address or phone number", hint="phones without a country code are read in the configured region")
            )
            if typed and typed.strip():
                identity = self._parse_identity(typed.strip())
                if identity is None:
                    self.app.notify(f"Not an e-mail address or a valid phone number: {typed.strip()}", severity="error", markup=False)
                    return
                await self._do(store.add_identity(profile.id, *identity, me), f"Added {identity[0]} {identity[1]}")

    def _parse_identity(self, text: str) -> tuple[str, str] | None:
        # Imported here: phonenumbers costs ~20 ms, paid when an identity is added, not at start.
        import phonenumbers

        from omniconsole.core.identity import normalize_address

        region = self.app.settings.default_region
        if "@" in text:
            local, _, domain = text.rpartition("@")
            if not local or "." not in domain or " " in text:
                return None
            return str(IdentityKind.EMAIL), normalize_address(IdentityKind.EMAIL, text, region)
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        return str(IdentityKind.PHONE), phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    async def _edit_attributes(self, profile: CustomerProfile) -> None:
        from omniconsole.tui.screens.dialogs import ChoiceDialog, InputDialog

        options = [(f"k:{key}", safe(f"{key}: {one_line(str(value), 50)}")) for key, value in profile.attributes.items()]
        options.append(("new", Text("+ add an attribute")))
        choice = await self.app.push_screen_wait(ChoiceDialog("Attributes", options))
        if choice is None:
            return
        key = choice[2:] if choice.startswith("k:") else ""
        current = f"{key}: {profile.attributes[key]}" if key else ""
        typed = await self.app.push_screen_wait(
            InputDialog("key: value", value=current, hint="an empty value removes the attribute")
        )
        if typed is None:
            return
        new_key, colon, value = typed.partition(":")
        new_key, value = new_key.strip(), value.strip()
        if not colon or not new_key:
            self.app.notify("Write the attribute as key: value", severity="warning")
            return
        attributes = dict(profile.attributes)
        if key and key != new_key:
            attributes.pop(key, None)
        if value:
            attributes[new_key] = value
        else:
            attributes.pop(new_key, None)
        await self._do(self.store.update_customer(profile.id, self.operator.login, attributes=attributes), "Attributes saved")

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_same_person(self) -> None:
        """Settle "possibly the same person": merge into this customer, dismiss, undo a merge,
        or pick any other customer to merge in."""
        from omniconsole.tui.screens.dialogs import ChoiceDialog

        profile = await self._profile()
        if profile is None:
            return
        options: list[tuple[str, Text]] = []
        for s in profile.suggestions:
            label = Text("Merge ")
            label.append_text(safe(one_line(s.other_name, 30), "bold"))
            label.append(f" (#{s.other_id}) into this customer: ")
            label.append_text(safe(one_line(s.reason, 60), "grey62"))
            options.append((f"merge:{s.other_id}:{s.id}", label))
            label = safe(one_line(s.other_name, 30), "bold")
            label.append(f" (#{s.other_id}) is someone else")
            options.append((f"dismiss:{s.id}", label))
        for m in profile.merges:
            if m.undone_at is None:
                label = Text("Undo the merge of ")
                label.append_text(safe(one_line(m.merged_name, 30), "bold"))
                label.append(f" (#{m.merged_id}) by ")
                label.append_text(safe(m.actor))
                label.append(datetime.fromtimestamp(m.at).strftime(", %d %b %H:%M"))
                options.append((f"unmerge:{m.id}", label))
        options.append(("search", Text("Merge another customer into this one…")))
        choice = await self.app.push_screen_wait(ChoiceDialog("The same person?", options))
        if choice is None:
            return
        kind, _, rest = choice.partition(":")
        if kind == "dismiss":
            await self._do(self.store.dismiss_suggestion(int(rest), self.operator.login), "They stay two customers")
        elif kind == "unmerge":
            await self._do(self.store.unmerge(int(rest), self.operator.login), "Merge undone")
        elif kind == "merge":
            other, _, suggestion_id = rest.partition(":")
            reason = next((s.reason for s in profile.suggestions if s.id == int(suggestion_id)), "")
            await self._merge_into(profile, int(other), reason)
        elif kind == "search":
            from omniconsole.tui.screens.search import SearchScreen

            found = await self.app.push_screen_wait(SearchScreen(self.store))
            if found is not None:
                try:
                    other = await self.store.live_customer(found.customer_id)
                except OmniError as exc:
                    self.app.notify(str(exc), severity="error", markup=False)
                    return
                if other == profile.id:
                    self.app.notify("That is this customer already", severity="warning")
                    return
                await self._merge_into(profile, other, "")

    async def _merge_into(self, profile: CustomerProfile, other_id: int, reason: str) -> None:
        from omniconsole.tui.screens.dialogs import InputDialog

        other = await self.store.customer_profile(other_id)
        if other is None:
            return
        title = (
            f"Merge «{one_line(other.display_name, 30)}» (#{other.id}: {len(other.identities)} identities,"
            f" {len(other.conversations)} conversations) into «{one_line(profile.display_name, 30)}»? Why:"
        )
        typed = await self.app.push_screen_wait(
            InputDialog(title, value=reason, hint="Enter merges (it can be undone with m), Escape cancels")
        )
        if typed is None:
            return
        await self._do(
            self.store.merge_customers(profile.id, other.id, self.operator.login, typed.strip()),
            "Merged; m can undo it",
        )
