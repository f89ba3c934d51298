"""Macros (issue #19): a named list of the rules' actions that an operator runs on the open
conversation from the window (a key or the palette), after a preview in words.

A macro runs through `Store` methods only — the same calls the operator's own keys make — so
in a team setup each goes over the core's socket and is checked against the operator's role
(omniconsole/store/access.py); alone it is the database itself. The operator is the actor of
every action. Each action that the store refuses is said in words and the rest still run; the
run ends with one timeline line "LOGIN ran macro NAME: …" (`Store.record_macro`).

Surveys are the core's to send (they need its survey settings and role): a macro that asks for
one says so instead of sending it.
"""

from __future__ import annotations

import time
from typing import Any

from omniconsole.automation.engine import answer_body
from omniconsole.automation.rules import Action, Macro
from omniconsole.errors import OmniError, error_phrase
from omniconsole.i18n import N_, phrase, render
from omniconsole.models import ConversationStatus


def preview(macro: Macro) -> list[str]:
    """What the macro will do, one line per action, in words of the current language."""
    return macro.describe()


async def run_macro(store: Any, macro: Macro, conversation_id: int, operator: str, *, customer_name: str = "") -> list[str]:
    """Do `macro`'s actions on a conversation as `operator`; returns what was done, one line
    per action (a refused one as "could not …: why") in the current language (the window's:
    macros run in its process). The timeline line keeps them as phrases, drawn in each reader's
    language. OmniError when the conversation does not exist."""
    conversation = await store.conversation(conversation_id)
    if conversation is None:
        raise OmniError(N_("conversation {id} does not exist"), id=conversation_id)
    done: list[dict] = []
    for action in macro.actions:
        try:
            done.append(await _do(store, action, conversation, operator, customer_name, macro.name) or action.phrase())
        except OmniError as exc:
            done.append(phrase(N_("could not {action}: {error}"), action=action.phrase(), error=error_phrase(exc)))
    await store.record_macro(conversation_id, macro.name, done, operator)
    return [render(line) for line in done]


async def _do(store: Any, action: Action, conversation: Any, operator: str, customer_name: str, macro: str) -> dict | None:
    cid, kind, value = conversation.id, action.kind, action.value
    if kind == "reply":
        channel_kind = conversation.channel_kinds[-1] if conversation.channel_kinds else ""
        variants = [a for a in await store.kb_articles() if a.key == value]
        await store.queue_reply(cid, answer_body(value, variants, "", customer_name, cid, channel_kind), operator)
    elif kind == "note":
        await store.add_note(cid, value, operator)
    elif kind in ("add_labels", "remove_labels"):
        current = (await store.conversation(cid)).labels
        labels = sorted(set(current) | set(value)) if kind == "add_labels" else [x for x in current if x not in value]
        if sorted(labels) == sorted(current):
            return phrase(N_("{action} (already so)"), action=action.phrase())
        await store.set_labels(cid, labels, operator)
    elif kind == "priority":
        await store.set_priority(cid, value, operator)
    elif kind == "assign":
        await store.assign(cid, value, operator)
    elif kind == "assign_queue":
        await store.move_to_queue(cid, value, operator)
    elif kind == "snooze":
        await store.set_status(cid, ConversationStatus.SNOOZED, operator, snoozed_until=time.time() + value)
    elif kind == "resolve":
        await store.set_status(cid, ConversationStatus.RESOLVED, operator)
    elif kind == "reopen":
        await store.set_status(cid, ConversationStatus.OPEN, operator)
    elif kind == "webhook":
        await store.call_webhook(cid, value, operator, macro)
    elif kind == "notify":
        recipients = list(action.operators) or ([conversation.assignee] if conversation.assignee else [])
        if not recipients:
            recipients = [op.login for op in await store.operators()]
        await store.notify_operators(cid, value, recipients, operator)
    elif kind == "survey":
        raise OmniError(N_("surveys are sent by the core after a resolution, not from a macro"))
    return None
