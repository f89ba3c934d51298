"""The main screen's triage keys (issue #15), kept out of screens/main.py: `O` cycles the inbox's
order (remembered per operator), `F` sets or clears its filter (channel, label, priority,
assignee; shown in the view bar while set), `x` blocks the open conversation's sender (their
conversations go to Spam, `7`) or, on a blocked customer's conversation, unblocks them.
Each is two keys at most: `x` Enter blocks the customer, `x` y unblocks, `F` Enter clears."""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual import work
from textual.binding import Binding

from omniconsole.errors import OmniError
from omniconsole.i18n import N_, Np_, _
from omniconsole.models import InboxOrder
from omniconsole.store import InboxFilter
from omniconsole.tui.text import one_line, safe
from omniconsole.tui.widgets.view_tabs import ORDER_NAMES, PRIORITY_NAMES

INBOX_BINDINGS = [
    Binding("O", "cycle_order", N_("Sort the inbox"), id="inbox.order"),
    Binding("F", "filter", N_("Filter the inbox"), id="inbox.filter"),
    Binding("x", "block", N_("Block / unblock the sender (Spam)"), id="customer.block"),
]

#: `O` goes round these, from the one in force.
_CYCLE = [InboxOrder.PRIORITY, InboxOrder.WAITING, InboxOrder.ACTIVITY]


#: The title of the second step of `F`, by what is filtered.
FILTER_TITLES = {
    "channel": N_("Show only the channel"),
    "label": N_("Show only the label"),
    "priority": N_("Show only the priority"),
    "assignee": N_("Show only the assignee"),
}


class InboxActions:
    """Mixed into MainScreen (which has `store`, `operator`, `inbox`, `conversation`, `_do`,
    `_need_conversation`, `_store_trouble`)."""

    async def load_inbox_order(self) -> None:
        """The order this operator chose last time (before the inbox first loads)."""
        try:
            self.inbox.order = await self.store.inbox_order(self.operator.login)
        except OmniError as exc:
            self._store_trouble(exc)

    async def action_cycle_order(self) -> None:
        """Next order: priority -> waiting longest -> newest -> priority; remembered."""
        order = _CYCLE[(_CYCLE.index(self.inbox.order) + 1) % len(_CYCLE)]
        keep = self.inbox.selected.conversation_id if self.inbox.selected else None
        await self.inbox.load(order=order, keep=keep)
        self.app.notify(_("Sorted by {order}").format(order=_(ORDER_NAMES[order])), timeout=2, markup=False)
        try:
            await self.store.set_inbox_order(self.operator.login, order)
        except OmniError as exc:
            self._store_trouble(exc)

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_filter(self) -> None:
        """Limit the inbox to a channel, a label, a priority or an assignee; or clear it."""
        from omniconsole.tui.screens.dialogs import ChoiceDialog

        only = self.inbox.only
        options: list[tuple[str, Text | str]] = []
        if only:
            options.append(("clear", Text(_("Clear the filter (show everything)"), style="bold")))
        options += [
            ("channel", _("Channel…")),
            ("label", _("Label…")),
            ("priority", _("Priority…")),
            ("assignee", _("Assignee…")),
        ]
        part = await self.app.push_screen_wait(ChoiceDialog(_("Filter the inbox"), options))
        if part is None:
            return
        if part == "clear":
            await self._set_filter(InboxFilter())
            return
        try:
            kinds, labels = await self.store.filter_choices()
            logins = [op.login for op in await self.store.operators()] if part == "assignee" else []
        except OmniError as exc:
            self._store_trouble(exc)
            return
        values: list[tuple[str, Text | str]] = [("", Text(_("any"), style="italic"))]
        if part == "channel":
            values += [(kind, kind) for kind in kinds]
        elif part == "label":
            values += [(f"={name}", safe(one_line(name, 60))) for name in labels]
        elif part == "priority":
            values += [(str(level), _(name)) for level, name in sorted(PRIORITY_NAMES.items(), reverse=True)]
        else:
            values += [(f"={login}", safe(one_line(login, 40))) for login in logins]
        value = await self.app.push_screen_wait(ChoiceDialog(_(FILTER_TITLES[part]), values))
        if value is None:
            return
        if part == "priority":
            chosen: str | int | None = int(value) if value else None
        else:
            chosen = value.removeprefix("=") if value else None
        await self._set_filter(replace(only, **{part: chosen}))

    async def _set_filter(self, only: InboxFilter) -> None:
        keep = self.inbox.selected.conversation_id if self.inbox.selected else None
        await self.inbox.load(only=only, keep=keep)
        self.app.notify(_("Filter cleared") if not only else _("Filtered"), timeout=2, markup=False)

    @work(group="dialog", exclusive=True, exit_on_error=False)
    async def action_block(self) -> None:
        """Block the sender (the customer, or one identity of theirs); on a blocked
        customer's conversation, unblock them."""
        from omniconsole.tui.screens.dialogs import ChoiceDialog, ConfirmDialog

        if (c := self._need_conversation()) is None:
            return
        try:
            blocked = await self.store.blocks(c.customer_id)
            profile = await self.store.customer_profile(c.customer_id)
        except OmniError as exc:
            self._store_trouble(exc)
            return
        if profile is None:
            return
        name = one_line(profile.display_name, 40) or _("customer {id}").format(id=profile.id)
        if blocked or c.status == "spam":
            # The name is the customer's text: literal, between the sentence's two halves.
            before, _name, after = _(
                "Unblock {name}? Their conversations leave Spam as they were, and what they send arrives again."
            ).partition("{name}")
            question = Text(before)
            question.append_text(safe(name))
            question.append(after)
            if await self.app.push_screen_wait(ConfirmDialog(question)):
                # _do redraws the conversation and reloads the inbox (counts included).
                await self._do(self.store.unblock_customer(c.customer_id, self.operator.login), Np_("done", "Unblocked"))
            return
        options: list[tuple[str, Text | str]] = [
            ("", Text.assemble(_("The customer") + " ", safe(name), ": " + _("every identity, now and later"))),
        ]
        for identity in profile.identities:
            options.append(
                (str(identity.id), Text.assemble(_("Only") + " ", identity.kind, " ", safe(one_line(identity.address, 50))))
            )
        choice = await self.app.push_screen_wait(
            ChoiceDialog(
                _("Block {name}? Their conversations go to Spam; what they send is kept there, never waits or notifies").format(
                    name=name
                ),
                options,
            )
        )
        if choice is None:
            return
        identity_id = int(choice) if choice else None
        await self._do(
            self.store.block_sender(c.customer_id, identity_id, self.operator.login), Np_("done", "Blocked: moved to Spam")
        )
