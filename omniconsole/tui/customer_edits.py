"""What an operator does to the customer behind a conversation: edit their card (name, note,
attributes, labels, one more identity), and settle "possibly the same person" suggestions by
merging or dismissing them, or undo a merge.

The dialogs here ask and return an intent (what to change, and the words that confirm it); the
screen applies it (`intent.apply(store, actor)`) the same way as every other action. Nothing
here calls into the screen. Typed identities are read by `omniconsole.core.identity`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rich.text import Text
from textual.app import App

from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import Np_, _, ngettext
from omniconsole.store import CustomerProfile, Store
from omniconsole.tui.text import clock_time, day_time, one_line, safe


@dataclass(frozen=True)
class CustomerIntent:
    """A change to customers the operator asked for: `run(store, actor)` makes it, `done` says
    so afterwards."""

    run: Callable[[Store, str], Awaitable[object]]
    done: str


def _update(customer_id: int, done: str, **changes) -> CustomerIntent:
    return CustomerIntent(lambda store, me: store.update_customer(customer_id, me, **changes), done)


async def ask_do_not_contact(app: App, profile: CustomerProfile) -> CustomerIntent | None:
    """Mark the customer "do not contact" with a reason, or allow contacting them again. It
    bars only what the company starts (omniconsole/core/contact.py); replies still go."""
    from omniconsole.tui.screens.dialogs import ConfirmDialog, InputDialog

    if profile.do_not_contact:
        question = Text(_("Allow writing to this customer first again? They asked:") + " ").append_text(
            safe(profile.do_not_contact)
        )
        if await app.push_screen_wait(ConfirmDialog(question)):
            return CustomerIntent(
                lambda store, me: store.set_do_not_contact(profile.id, None, me), Np_("done", "May be contacted again")
            )
        return None
    typed = await app.push_screen_wait(
        InputDialog(
            _("Do not contact: why"), hint=_("no outbound-first message, survey, rule message or bulk send; replies still go")
        )
    )
    if typed is not None and typed.strip():
        reason = typed.strip()
        return CustomerIntent(
            lambda store, me: store.set_do_not_contact(profile.id, f"{me}: {reason}", me), Np_("done", "Marked do not contact")
        )
    return None


async def ask_customer_edit(app: App, profile: CustomerProfile, region: str) -> CustomerIntent | None:
    """Ask which part of the card to edit and its new value; None when cancelled or refused
    (a refusal is told in words)."""
    from omniconsole.tui.screens.dialogs import ChoiceDialog, InputDialog, TextDialog

    options = [
        ("name", Text(_("Name:") + " ").append_text(safe(one_line(profile.display_name, 50)))),
        ("note", Text(_("Note:") + " ").append_text(safe(one_line(profile.note, 50) or _("(none)")))),
        ("attributes", Text(_("Attributes ({n})").format(n=len(profile.attributes)))),
        ("labels", Text(_("Labels:") + " ").append_text(safe(", ".join(profile.labels) or _("(none)")))),
        ("identity", Text(_("Add an e-mail or phone number"))),
        ("contact", Text(_("Do not contact:") + " ").append_text(safe(one_line(profile.do_not_contact or _("no"), 50)))),
    ]
    choice = await app.push_screen_wait(ChoiceDialog(_("Edit the customer"), options))
    if choice == "name":
        typed = await app.push_screen_wait(InputDialog(_("Name"), value=profile.display_name))
        if typed is not None and typed.strip():
            return _update(profile.id, Np_("done", "Name saved"), name=typed)
    elif choice == "note":
        typed = await app.push_screen_wait(TextDialog(_("Note about the customer"), profile.note))
        if typed is not None:
            return _update(profile.id, Np_("done", "Note saved"), note=typed.strip())
    elif choice == "labels":
        typed = await app.push_screen_wait(InputDialog(_("Customer labels (comma separated)"), value=", ".join(profile.labels)))
        if typed is not None:
            return _update(profile.id, Np_("done", "Labels saved"), labels=typed.split(","))
    elif choice == "attributes":
        return await ask_attribute(app, profile)
    elif choice == "contact":
        return await ask_do_not_contact(app, profile)
    elif choice == "identity":
        typed = await app.push_screen_wait(
            InputDialog(
                _("Add an e-mail address or phone number"),
                hint=_("phones without a country code are read in the configured region"),
            )
        )
        if typed and typed.strip():
            # Imported here: phonenumbers costs ~20 ms, paid when an identity is added, not at start.
            from omniconsole.core.identity import parse_typed_identity

            identity = parse_typed_identity(typed.strip(), region)
            if identity is None:
                app.notify(
                    _("Not an e-mail address or a valid phone number: {typed}").format(typed=typed.strip()),
                    severity="error",
                    markup=False,
                )
                return None
            kind, address = str(identity[0]), identity[1]
            return CustomerIntent(
                lambda store, me: store.add_identity(profile.id, kind, address, me),
                _("Added {kind} {address}").format(kind=kind, address=address),
            )
    return None


async def ask_attribute(app: App, profile: CustomerProfile) -> CustomerIntent | None:
    """Add, change or (with an empty value) remove one attribute of the card."""
    from omniconsole.tui.screens.dialogs import ChoiceDialog, InputDialog

    options = [(f"k:{key}", safe(f"{key}: {one_line(str(value), 50)}")) for key, value in profile.attributes.items()]
    options.append(("new", Text(_("+ add an attribute"))))
    choice = await app.push_screen_wait(ChoiceDialog(_("Attributes"), options))
    if choice is None:
        return None
    key = choice[2:] if choice.startswith("k:") else ""
    current = f"{key}: {profile.attributes[key]}" if key else ""
    typed = await app.push_screen_wait(
        InputDialog(_("key: value"), value=current, hint=_("an empty value removes the attribute"))
    )
    if typed is None:
        return None
    new_key, colon, value = typed.partition(":")
    new_key, value = new_key.strip(), value.strip()
    if not colon or not new_key:
        app.notify(_("Write the attribute as key: value"), severity="warning")
        return None
    attributes = dict(profile.attributes)
    if key and key != new_key:
        attributes.pop(key, None)
    if value:
        attributes[new_key] = value
    else:
        attributes.pop(new_key, None)
    return _update(profile.id, Np_("done", "Attributes saved"), attributes=attributes)


async def ask_same_person(app: App, store: Store, profile: CustomerProfile) -> CustomerIntent | None:
    """Settle "possibly the same person": merge into this customer, dismiss, undo a merge, or
    pick any other customer to merge in."""
    from omniconsole.tui.screens.dialogs import ChoiceDialog

    options: list[tuple[str, Text]] = []
    for s in profile.suggestions:
        label = Text(_("Merge") + " ")
        label.append_text(safe(one_line(s.other_name, 30), "bold"))
        label.append(" " + _("(#{id}) into this customer:").format(id=s.other_id) + " ")
        label.append_text(safe(one_line(s.reason, 60), "grey62"))
        options.append((f"merge:{s.other_id}:{s.id}", label))
        label = safe(one_line(s.other_name, 30), "bold")
        label.append(" " + _("(#{id}) is someone else").format(id=s.other_id))
        options.append((f"dismiss:{s.id}", label))
    for m in profile.merges:
        if m.undone_at is None:
            label = Text(_("Undo the merge of") + " ")
            label.append_text(safe(one_line(m.merged_name, 30), "bold"))
            label.append(" " + _("(#{id}) by").format(id=m.merged_id) + " ")
            label.append_text(safe(m.actor))
            label.append(", " + day_time(m.at))
            options.append((f"unmerge:{m.id}", label))
    options.append(("search", Text(_("Merge another customer into this one…"))))
    choice = await app.push_screen_wait(ChoiceDialog(_("The same person?"), options))
    if choice is None:
        return None
    kind, _sep, rest = choice.partition(":")
    if kind == "dismiss":
        return CustomerIntent(lambda store, me: store.dismiss_suggestion(int(rest), me), Np_("done", "They stay two customers"))
    if kind == "unmerge":
        return CustomerIntent(lambda store, me: store.unmerge(int(rest), me), Np_("done", "Merge undone"))
    if kind == "merge":
        other, _sep, suggestion_id = rest.partition(":")
        reason = next((s.reason for s in profile.suggestions if s.id == int(suggestion_id)), "")
        return await ask_merge(app, store, profile, int(other), reason)
    if kind == "search":
        from omniconsole.tui.screens.search import SearchScreen

        settings = getattr(app, "settings", None)
        found = await app.push_screen_wait(SearchScreen(store, region=settings.default_region if settings else "RU"))
        if found is None:
            return None
        try:
            other = await store.live_customer(found.customer_id)
        except OmniError as exc:
            app.notify(error_text(exc), severity="error", markup=False)
            return None
        if other == profile.id:
            app.notify(_("That is this customer already"), severity="warning")
            return None
        return await ask_merge(app, store, profile, other, "")
    return None


async def ask_merge(app: App, store: Store, profile: CustomerProfile, other_id: int, reason: str) -> CustomerIntent | None:
    """Confirm merging customer `other_id` into `profile`, with the reason (editable)."""
    from omniconsole.tui.screens.dialogs import InputDialog

    other = await store.customer_profile(other_id)
    if other is None:
        return None
    # What the operator judges by: who the other customer is reachable as, and what they last wrote.
    identities = ", ".join(f"{i.kind} {one_line(i.address, 40)}" for i in other.identities[:6])
    if len(other.identities) > 6:
        identities += " " + _("and {n} more").format(n=len(other.identities) - 6)
    last = ""
    for conversation in other.conversations[:3]:
        written = [e for e in await store.timeline(conversation.id, limit=200) if e.direction == "in"]
        if written:
            last = "\n" + _("Last message ({moment}): «{text}»").format(
                moment=clock_time(written[-1].created_at), text=one_line(written[-1].body, 120)
            )
            break
    title = (
        _("Merge «{other}» (#{id}: {identities}, {conversations}) into «{name}»?").format(
            other=one_line(other.display_name, 30),
            id=other.id,
            identities=ngettext("{n} identity", "{n} identities", len(other.identities)).format(n=len(other.identities)),
            conversations=ngettext("{n} conversation", "{n} conversations", len(other.conversations)).format(
                n=len(other.conversations)
            ),
            name=one_line(profile.display_name, 30),
        )
        + "\n"
        + _("Identities: {list}").format(list=identities or _("none"))
        + last
        + "\n"
        + _("Why:")
    )
    typed = await app.push_screen_wait(
        InputDialog(title, value=reason, hint=_("Enter merges (it can be undone with m), Escape cancels"))
    )
    if typed is None:
        return None
    return CustomerIntent(
        lambda store, me: store.merge_customers(profile.id, other.id, me, typed.strip()), Np_("done", "Merged; m can undo it")
    )
