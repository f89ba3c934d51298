"""Conversations the company starts (issue #22): one message to a customer who did not write
first, from the window, `omniconsole send`, or a script.

    started = await start_conversation(store, settings, OutboundRequest("email:ann@example.com",
                                       text="Your order has shipped", subject="Order 1042"))

The request is checked before anything is queued, and each refusal is a sentence (SendRefused):
an address the channel kind cannot read, no configured channel for it, a channel that can only
answer (a Telegram bot: `Connector.needs_customer_first`) to a customer who never wrote to it,
e-mail without a subject, WhatsApp outside its 24-hour window without an approved template
(omniconsole/core/reply_window.py), and a customer marked "do not contact"
(omniconsole/core/contact.py). Then store/outbound.py queues it and the core's outbox sends it;
its delivery state is read back with `store.started_message`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from omniconsole.config import ChannelSettings, Settings
from omniconsole.core.identity import normalize_address
from omniconsole.core.reply_window import whatsapp_window
from omniconsole.errors import OmniError, error_phrase
from omniconsole.i18n import N_, phrase
from omniconsole.message_templates import parse_templates
from omniconsole.models import IdentityKind
from omniconsole.store import Store
from omniconsole.store.actions import ActionError
from omniconsole.store.outbound import StartedMessage


class SendRefused(OmniError):
    """A company-started message that cannot go, and why, in words."""


@dataclass(frozen=True)
class OutboundRequest:
    """What to send: `to` is `KIND:ADDRESS` (`email:ann@example.com`, `whatsapp:+79991234567`,
    `telegram:123456`); exactly one of `text`, `answer` (an Answers library article id) or
    `template` (an approved WhatsApp template's name, with `params`)."""

    to: str
    text: str | None = None
    answer: str | None = None
    template: str | None = None
    params: tuple[str, ...] = ()
    channel: str | None = None
    subject: str = ""
    idempotency_key: str | None = None
    author: str = ""


def parse_recipient(to: str, region: str) -> tuple[IdentityKind, str]:
    """(kind, normalised address) of `KIND:ADDRESS`; SendRefused in words when unreadable."""
    kind_text, _, address = to.partition(":")
    kinds = [k.value for k in IdentityKind]
    try:
        kind = IdentityKind(kind_text.strip().lower())
    except ValueError:
        raise SendRefused(
            N_("{to}: write the recipient as KIND:ADDRESS, KIND one of {kinds}"), to=repr(to), kinds=", ".join(kinds)
        ) from None
    if not address.strip():
        raise SendRefused(N_("{to}: the address after {kind}: is empty"), to=repr(to), kind=kind_text)
    try:
        normalised = normalize_address(kind, address.strip(), region)
    except (ValueError, OmniError) as exc:
        raise SendRefused(
            N_("{to} is not a {kind} address: {error}"), to=repr(to), kind=kind.value, error=error_phrase(exc)
        ) from None
    if not normalised:
        raise SendRefused(N_("{to} is not a {kind} address"), to=repr(to), kind=kind.value)
    return kind, normalised


def _connector_class(kind: str):
    # Imported when used: the window imports this module and must not load the connectors.
    from connectors import connector_class

    return connector_class(kind)


def _reaches(channel: ChannelSettings, kind: IdentityKind) -> bool:
    cls = _connector_class(channel.kind)
    own = getattr(cls, "identity_kind", None)
    if channel.kind == "demo":
        return channel.channel_kind == kind.value
    phones = {IdentityKind.PHONE, IdentityKind.WHATSAPP}
    return own == kind or (kind in phones and own in phones)


def pick_channel(settings: Settings, kind: IdentityKind, name: str | None) -> ChannelSettings:
    """The configured channel to send by: `name`, else the first enabled channel for `kind`
    (a phone number goes by SMS or WhatsApp, in config order)."""
    channels = [c for c in settings.channels if c.enabled]
    if name:
        for channel in channels:
            if channel.name == name:
                if not _reaches(channel, kind):
                    raise SendRefused(
                        N_("channel {name} ({channel_kind}) cannot send to a {kind} address"),
                        name=repr(name),
                        channel_kind=channel.kind,
                        kind=kind.value,
                    )
                return channel
        raise SendRefused(N_("there is no enabled channel named {name} in the config"), name=repr(name))
    for channel in channels:
        if channel.kind != "api" and _reaches(channel, kind):
            return channel
    raise SendRefused(N_("no enabled channel in the config can send to a {kind} address"), kind=kind.value)


async def start_conversation(
    store: Store, settings: Settings, request: OutboundRequest, now: float | None = None
) -> StartedMessage:
    """Check and queue one company-started message; SendRefused in words when it cannot go.

    An idempotency key seen before returns the earlier message (`duplicate`) and queues
    nothing, whatever else the request says."""
    now = now or time.time()
    if request.idempotency_key:
        earlier = await store.started_message(idempotency_key=request.idempotency_key)
        if earlier is not None:
            return earlier
    given = [x for x in (request.text, request.answer, request.template) if x is not None]
    if len(given) != 1:
        raise SendRefused(N_("say what to send: exactly one of a text, an answer id or a template"))
    kind, address = parse_recipient(request.to, settings.default_region)
    channel = pick_channel(settings, kind, request.channel)
    channel_id = await store.ensure_channel(channel.channel_kind, channel.name)
    last_in = await store.last_inbound_from(kind.value, address, channel_id)
    reason = getattr(_connector_class(channel.kind), "needs_customer_first", "")
    if reason and last_in is None:
        raise SendRefused(
            N_("cannot write first to {to} by {channel}: {reason}"), to=request.to, channel=repr(channel.name), reason=reason
        )
    meta = None
    body = request.text or ""
    if request.answer is not None:
        articles = [a for a in await store.kb_articles() if a.key == request.answer and not a.internal]
        if not articles:
            raise SendRefused(
                N_("there is no answer {key} in the Answers library (see `omniconsole answers list`)"), key=repr(request.answer)
            )
        body = articles[0].body
    if request.template is not None:
        templates = {t.name: t for t in parse_templates(channel.options.get("templates"))}
        template = templates.get(request.template)
        if template is None:
            known = ", ".join(templates) or phrase(N_("none configured"))
            raise SendRefused(
                N_("channel {channel} has no template {template} (templates: {known})"),
                channel=repr(channel.name),
                template=repr(request.template),
                known=known,
            )
        if len(request.params) != len(template.params):
            raise SendRefused(
                N_("template {template} takes {n} parameters ({names}); {given} given"),
                template=repr(template.name),
                n=len(template.params),
                names=", ".join(template.params) or phrase(N_("none")),
                given=len(request.params),
            )
        body = template.render(request.params)
        meta = {"template": {"name": template.name, "language": template.language, "params": list(request.params)}}
    if not body.strip():
        raise SendRefused(N_("the message is empty"))
    if kind == IdentityKind.EMAIL and not request.subject.strip():
        raise SendRefused(N_("an e-mail needs a subject (--subject)"))
    if channel.channel_kind == "whatsapp" and meta is None and not whatsapp_window(last_in, now).free_text:
        templates = ", ".join(t.name for t in parse_templates(channel.options.get("templates"))) or phrase(N_("none configured"))
        raise SendRefused(
            N_(
                "WhatsApp takes free text only within 24 hours of the customer's last message; send an approved"
                " template instead (--template NAME; this channel's: {templates})"
            ),
            templates=templates,
        )
    try:
        return await store.queue_first_message(
            kind.value,
            address,
            channel_id,
            body,
            request.author,
            subject=request.subject.strip(),
            meta=meta,
            idempotency_key=request.idempotency_key,
        )
    except ActionError as exc:
        raise SendRefused.rebuilt(str(exc), exc.template, exc.params) from None
