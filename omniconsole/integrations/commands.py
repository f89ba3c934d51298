"""`omniconsole send` (a conversation the company starts, for scripts) and `omniconsole
send-status` (its delivery state), wired into cli.py.

    omniconsole send --to email:ann@example.com --subject "Order 1042" --text "It has shipped" \\
        --idempotency-key order-1042-shipped
    omniconsole send-status 1234            # or: --idempotency-key order-1042-shipped

Both print one line; `--json` prints one JSON object instead (message_id, conversation_id,
customer_id, state, error, duplicate). A refusal exits 2 with its reason in words.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from omniconsole.errors import UsageError
from omniconsole.i18n import N_, _, pgettext


def add_parsers(sub: argparse._SubParsersAction, common) -> None:
    """The `send` and `send-status` sub-commands."""
    p = sub.add_parser("send", help=_("start a conversation: send a customer a message they did not ask for"))
    common(p)
    p.add_argument(
        "--to",
        required=True,
        metavar="KIND:ADDRESS",
        help=_("the customer's identity: email:ann@example.com, whatsapp:+79991234567, phone:..., telegram:ID"),
    )
    p.add_argument("--channel", metavar="NAME", help=_("the configured channel to send by (default: the first for the kind)"))
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help=_("the message"))
    what.add_argument("--answer", metavar="ID", help=_("an article of the Answers library (`omniconsole answers list`)"))
    what.add_argument("--template", metavar="NAME", help=_("an approved WhatsApp template configured on the channel"))
    p.add_argument("--param", action="append", default=[], metavar="VALUE", help=_("a template parameter, in order; repeatable"))
    p.add_argument("--subject", default="", help=_("the subject (e-mail needs one)"))
    p.add_argument(
        "--idempotency-key", metavar="KEY", help=_("the same key again sends nothing twice and reports the first message")
    )
    p.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help=_("wait up to this long for the core to send it, then print its state (default: do not wait)"),
    )
    p.add_argument("--json", action="store_true", help=_("print one JSON object"))
    p = sub.add_parser("send-status", help=_("the delivery state of a message sent with `send`"))
    common(p)
    p.add_argument("message_id", nargs="?", type=int, metavar="ID")
    p.add_argument("--idempotency-key", metavar="KEY")
    p.add_argument("--json", action="store_true", help=_("print one JSON object"))


def _line(started, as_json: bool) -> str:
    fields = {
        "message_id": started.message_id,
        "conversation_id": started.conversation_id,
        "customer_id": started.customer_id,
        "state": started.state,
        "error": started.error,
        "duplicate": started.duplicate,
    }
    if as_json:
        return json.dumps(fields, ensure_ascii=False)
    error = f" ({started.error})" if started.error else ""
    again = _(" (sent before with this idempotency key)") if started.duplicate else ""
    return (
        _("message {id} in conversation {conversation} to customer {customer}: {state}").format(
            id=started.message_id,
            conversation=started.conversation_id,
            customer=started.customer_id,
            state=pgettext("delivery state", started.state),  # marked in cli/data.py STATE_WORDS
        )
        + f"{error}{again}"
    )


def run_send(args: argparse.Namespace, settings, me: str) -> int:
    """`omniconsole send`: check, queue, optionally wait; 0 when queued or sent, 1 when it failed."""
    from omniconsole.core.outbound import OutboundRequest, start_conversation
    from omniconsole.store import Store

    request = OutboundRequest(
        to=args.to,
        text=args.text,
        answer=args.answer,
        template=args.template,
        params=tuple(args.param),
        channel=args.channel,
        subject=args.subject,
        idempotency_key=args.idempotency_key,
        author=me,
    )

    async def send():
        store = await Store.open(settings.database)
        try:
            started = await start_conversation(store, settings, request)
            deadline = time.monotonic() + max(0.0, args.wait)
            while started.state in ("queued", "sending") and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                started = await store.started_message(message_id=started.message_id) or started
            return started
        finally:
            await store.close()

    started = asyncio.run(send())
    print(_line(started, args.json))
    return 1 if started.state == "failed" else 0


def run_status(args: argparse.Namespace, settings) -> int:
    """`omniconsole send-status`: 0 when found (whatever its state), 2 when unknown."""
    from omniconsole.store import Store

    if (args.message_id is None) == (args.idempotency_key is None):
        raise UsageError(N_("give a message id or --idempotency-key KEY"))

    async def status():
        store = await Store.open(settings.database, create=False)
        try:
            return await store.started_message(message_id=args.message_id, idempotency_key=args.idempotency_key)
        finally:
            await store.close()

    started = asyncio.run(status())
    if started is None:
        raise UsageError(N_("there is no outbound message {id!r}"), id=args.message_id or args.idempotency_key)
    print(_line(started, args.json))
    return 0
