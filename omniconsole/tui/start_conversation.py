"""Starting a conversation from the window (issue #22, key `N`): pick the customer (the one on
screen, one found by search, or a new one by phone or e-mail), one of their identities, then
write; e-mail asks for a subject, and WhatsApp outside its 24-hour window offers the channel's
approved templates instead of free text. The checks and the queueing are the core's
(omniconsole/core/outbound.py), the same as `omniconsole send` and the open API's
`POST /outbound`; a refusal is told in words and nothing is queued.

`ask_outbound` asks and returns an `OutboundRequest` (or None when cancelled);
`start_from_window` asks and sends for the main screen.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import App

from omniconsole.config import Settings
from omniconsole.core.outbound import OutboundRequest, SendRefused, parse_recipient, pick_channel
from omniconsole.core.reply_window import whatsapp_window
from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import _
from omniconsole.message_templates import parse_templates
from omniconsole.store import CustomerProfile, Store
from omniconsole.tui.text import one_line, safe

#: Identity kinds a company-started message can go to.
REACHABLE = ("email", "phone", "whatsapp", "telegram", "vk")


async def _pick_customer(app: App, store: Store, current: CustomerProfile | None, region: str) -> tuple[str, str] | None:
    """(kind, address) the operator chose; None when cancelled."""
    from omniconsole.core.identity import parse_typed_identity
    from omniconsole.tui.screens.dialogs import ChoiceDialog, InputDialog

    options = []
    if current is not None:
        options.append(
            ("current", Text(_("This customer:") + " ").append_text(safe(one_line(current.display_name or _("(no name)"), 40))))
        )
    options += [("search", Text(_("Find a customer…"))), ("new", Text(_("Someone new, by phone or e-mail…")))]
    choice = await app.push_screen_wait(ChoiceDialog(_("Start a conversation with"), options))
    profile = current if choice == "current" else None
    if choice == "new":
        typed = await app.push_screen_wait(
            InputDialog(_("Phone or e-mail"), hint=_("phones without a country code are read in the configured region"))
        )
        if not typed or not typed.strip():
            return None
        identity = parse_typed_identity(typed.strip(), region)
        if identity is None:
            app.notify(
                _("Not an e-mail address or a valid phone number: {typed}").format(typed=typed.strip()),
                severity="error",
                markup=False,
            )
            return None
        return str(identity[0]), identity[1]
    if choice == "search":
        typed = await app.push_screen_wait(InputDialog(_("Find a customer (name, phone, e-mail)")))
        if not typed or not typed.strip():
            return None
        found = (await store.search(typed.strip(), limit=20)).customers
        if not found:
            app.notify(Text(_("Nobody found for") + " ").append_text(safe(typed.strip())), severity="warning")
            return None
        picked = await app.push_screen_wait(
            ChoiceDialog(
                _("Customers found"),
                [
                    (
                        str(hit.customer_id),
                        Text(f"#{hit.customer_id} ")
                        .append_text(safe(one_line(hit.display_name or _("(no name)"), 30)))
                        .append(" ")
                        .append_text(safe(one_line(hit.identities, 40), "dim")),
                    )
                    for hit in found
                ],
            )
        )
        if picked is None:
            return None
        profile = await store.customer_profile(int(picked))
    if profile is None:
        return None
    identities = [i for i in profile.identities if str(i.kind) in REACHABLE]
    if not identities:
        app.notify(_("This customer has no phone, e-mail or messenger to write to"), severity="warning", markup=False)
        return None
    if len(identities) == 1:
        return str(identities[0].kind), identities[0].address
    picked = await app.push_screen_wait(
        ChoiceDialog(
            _("Write to"), [(str(n), Text(f"{i.kind}  ").append_text(safe(i.address))) for n, i in enumerate(identities)]
        )
    )
    if picked is None:
        return None
    chosen = identities[int(picked)]
    return str(chosen.kind), chosen.address


async def ask_outbound(
    app: App, store: Store, settings: Settings, current: CustomerProfile | None, author: str, now: float | None = None
) -> OutboundRequest | None:
    """Ask whom to write to, by which channel and what; None when cancelled or impossible
    (said in words)."""
    from omniconsole.tui.screens.dialogs import InputDialog, TextDialog
    from omniconsole.tui.screens.templates import TemplateDialog

    recipient = await _pick_customer(app, store, current, settings.default_region)
    if recipient is None:
        return None
    to = f"{recipient[0]}:{recipient[1]}"
    try:
        kind, address = parse_recipient(to, settings.default_region)
        channel = pick_channel(settings, kind, None)
        channel_id = await store.ensure_channel(channel.channel_kind, channel.name)
        last_in = await store.last_inbound_from(kind.value, address, channel_id)
    except (SendRefused, OmniError) as exc:
        app.notify(error_text(exc), severity="error", markup=False)
        return None
    subject = ""
    if kind.value == "email":
        subject = await app.push_screen_wait(InputDialog(_("Subject")))
        if not subject or not subject.strip():
            return None
    if channel.channel_kind == "whatsapp" and not whatsapp_window(last_in, now or time.time()).free_text:
        try:
            templates = parse_templates(channel.options.get("templates"))
        except ValueError:
            templates = []
        choice = await app.push_screen_wait(
            TemplateDialog(
                templates, _("More than 24 hours since this customer last wrote on WhatsApp: only an approved template may go.")
            )
        )
        if choice is None:
            return None
        return OutboundRequest(to, template=choice.name, params=choice.params, channel=channel.name, author=author)
    body = await app.push_screen_wait(TextDialog(_("Message by {channel}").format(channel=channel.name)))
    if not body or not body.strip():
        return None
    return OutboundRequest(to, text=body.strip(), subject=subject.strip(), channel=channel.name, author=author)


async def start_from_window(screen) -> int | None:
    """Ask (`ask_outbound`) and send for the main screen's operator; the conversation's id, or
    None when cancelled or refused (said in a toast)."""
    from omniconsole.core.outbound import start_conversation

    store = screen.store
    try:
        current = await store.customer_profile(screen.conversation.customer_id) if screen.conversation else None
        request = await ask_outbound(screen.app, store, screen.app.settings, current, screen.operator.login)
        if request is None:
            return None
        started = await start_conversation(store, screen.app.settings, request)
    except SendRefused as exc:
        screen.notify(error_text(exc), severity="error", markup=False)
        return None
    except OmniError as exc:
        screen._store_trouble(exc)
        return None
    screen.notify(_("Queued") if not started.duplicate else _("Sent before with this key"), markup=False)
    return started.conversation_id
