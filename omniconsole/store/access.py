"""Who may call which `Store` method: the one table the core checks every operator's call against.

In a team setup operators never open the database; their windows and commands send `Store`
calls to the core over its Unix socket (`omniconsole/core/control.py`), which looks the method
up here, compares the role it needs with the caller's role, and fills every parameter named in
`ACTOR_PARAMETERS` with the caller's login (taken from the socket's peer credentials, never
from what the client sends). A method missing from `ROLES` is refused: each new action is
authorised by the same rule, and `tests/unit/test_access.py` fails until it is declared.

Levels, each including the ones before it:

* ``read``: every conversation, customer, search and the events log (an operator's window reads
  every customer anyway; the boundary that must hold is on writes, roles and the audit);
* ``agent``: work conversations, customers and their merges, propose library articles;
* ``supervisor``: also the answers library and rules (reports and the wallboard are reads);
* ``admin``: also operators and their roles, exports, erasures and retention;
* ``core``: never over the socket. Ingest, the outbox's states, channel health and the lease are
  the core's own work (bulk imports run inside the core's process or as its service user).
"""

from __future__ import annotations

from omniconsole.i18n import N_, Np_, phrase, word
from omniconsole.models import OperatorRole
from omniconsole.store.actions import ActionError

READ, AGENT, SUPERVISOR, ADMIN, CORE = "read", "agent", "supervisor", "admin", "core"

#: The order of the levels: a caller whose role reaches a level may call its methods.
LEVELS = {READ: 0, AGENT: 1, SUPERVISOR: 2, ADMIN: 3, CORE: 99}
#: The level each operator role reaches.
ROLE_LEVEL = {OperatorRole.AGENT.value: AGENT, OperatorRole.SUPERVISOR.value: SUPERVISOR, OperatorRole.ADMIN.value: ADMIN}
#: The roles as words of a refusal, translated where it is drawn.
ROLE_WORDS = (Np_("role", "agent"), Np_("role", "supervisor"), Np_("role", "admin"))

#: Every public `Store` method and the level it needs (see the module docstring).
ROLES: dict[str, str] = {
    # reading
    "inbox_page": READ,
    "inbox_counts": READ,
    "conversation": READ,
    "timeline": READ,
    "customer_profile": READ,
    "search": READ,
    "events_since": READ,
    "last_event_id": READ,
    "conversation_view": READ,
    "next_waiting": READ,
    "conversation_index": READ,
    "reply_options": READ,
    "presence": READ,
    "typing_addresses": READ,
    "channels": READ,
    "operators": READ,
    "stats": READ,
    "cursor": READ,
    "last_inbound_at": READ,
    "live_customer": READ,
    "lease_holder": READ,
    "reactions": READ,
    "kb_articles": READ,
    "kb_figures": READ,
    "storage_figures": READ,
    "message_versions": READ,
    "next_outbox_due": READ,
    "identity_owner": READ,
    "do_not_contact": READ,
    "last_inbound_from": READ,
    "started_message": READ,
    "webhook_states": READ,
    "operator_states": READ,
    "queue_figures": READ,
    "bot_report": READ,
    "inbox_order": READ,
    "filter_choices": READ,
    "blocks": READ,
    # an agent's work
    "set_presence": AGENT,
    "mark_read": AGENT,
    "queue_reply": AGENT,
    "add_note": AGENT,
    "assign": AGENT,
    "set_status": AGENT,
    "set_priority": AGENT,
    "set_labels": AGENT,
    # automation (issue #19): a macro's actions besides the ones above
    "move_to_queue": AGENT,
    "call_webhook": AGENT,
    "notify_operators": AGENT,
    "record_macro": AGENT,
    "note_on_call": AGENT,
    "retry_failed": AGENT,
    "merge_customers": AGENT,
    "unmerge": AGENT,
    "dismiss_suggestion": AGENT,
    "update_customer": AGENT,
    "add_identity": AGENT,
    "kb_propose": AGENT,
    "kb_record_shown": AGENT,
    "kb_record_insertion": AGENT,
    "kb_record_sent": AGENT,
    "set_subject": AGENT,
    "set_do_not_contact": AGENT,
    "queue_first_message": AGENT,
    # an operator's own status and windows (`operator` is always the caller: their own only)
    "set_own_status": AGENT,
    "set_own_language": AGENT,
    "window_beat": AGENT,
    "close_own_window": AGENT,
    "set_inbox_order": AGENT,
    "block_sender": AGENT,
    "unblock_customer": AGENT,
    # the library and rules
    "kb_sync": SUPERVISOR,
    "kb_save": SUPERVISOR,
    "kb_delete": SUPERVISOR,
    # reports and the wallboard (issue #20: a supervisor's; agents get the team's totals later)
    "report_histories": SUPERVISOR,
    "report_figures": SUPERVISOR,
    "report_facts": SUPERVISOR,
    "wallboard_rows": SUPERVISOR,
    # derived rows only (facts of existing history), run before any report
    "backfill_facts": READ,
    # an agent's own figures beside the team's totals (`me` is the caller's login)
    "own_figures": READ,
    # journeys (issue #21): every agent's window reads the customer's journey and the outcome
    # table its channel advice comes from (rows of conversations an agent may read anyway).
    # Detected topics are the core's to record (a report run by the core's user, or alone).
    "customer_journey": READ,
    "journey_texts": READ,
    "journey_rows": READ,
    # the outcome table the core computes (every window advises from it); only the core saves it
    "journey_outcomes": READ,
    "save_journey_outcomes": CORE,
    "undetected_topics": SUPERVISOR,
    "set_topics": CORE,
    # people's data and rights
    "add_operator": ADMIN,
    "set_operator_routing": ADMIN,
    "set_operator_language": ADMIN,
    "remove_operator": ADMIN,
    "export_customer": ADMIN,
    "erase_customer": ADMIN,
    "prune_live_events": ADMIN,
    "erase_texts_before": ADMIN,
    # the core's own work
    "ingest": CORE,
    "ensure_channel": CORE,
    "set_channel_health": CORE,
    "wake_snoozed": CORE,
    "recover_sending": CORE,
    "claim_outbox": CORE,
    "mark_sent": CORE,
    "mark_retry": CORE,
    "mark_failed": CORE,
    "apply_delivery_updates": CORE,
    "try_acquire_lease": CORE,
    "renew_lease": CORE,
    "release_lease": CORE,
    "checkpoint": CORE,
    "open": CORE,
    "close": CORE,
    # webhook deliveries are the core's jobs
    "start_webhook": CORE,
    "webhook_sources": CORE,
    "webhook_delivered": CORE,
    "webhook_failed": CORE,
    # surveys are sent and their answers taken by the core's survey service
    "pending_survey": CORE,
    "survey_target": CORE,
    "record_survey": CORE,
    "record_survey_answer": CORE,
}

#: Parameters that name who acts: the core sets them to the caller's login, whatever was sent.
ACTOR_PARAMETERS = frozenset({"actor", "author", "operator", "me"})
#: Methods whose `operator` parameter only filters what is read (anyone's "Mine" view may be
#: read); for them the sent value is kept.
FILTER_OPERATOR = frozenset({"inbox_page", "inbox_counts", "conversation_view", "next_waiting", "conversation_index", "presence"})
#: Parameters a caller over the socket may never give (paths on the core's machine).
CORE_ONLY_PARAMETERS = frozenset({"attachments_dir"})


class RoleRefused(ActionError):
    """An operator asked for something their role does not allow (raised by the core)."""


def needed_level(method: str) -> str:
    """The level `method` needs; CORE (refused over the socket) for anything undeclared."""
    return ROLES.get(method, CORE)


def check(method: str, role: str, login: str) -> None:
    """Raise RoleRefused, in words, unless an operator with `role` may call `method`."""
    level = needed_level(method)
    if level == CORE:
        if method in ROLES:
            raise RoleRefused(N_("{method} is the core's own work; no operator may ask for it"), method=method)
        raise RoleRefused(N_("{method} has no declared role (omniconsole/store/access.py), so nobody may call it"), method=method)
    have = ROLE_LEVEL.get(role)
    if have is None or LEVELS[have] < LEVELS[level]:
        template = {
            AGENT: N_("only an agent may do that ({method}), and {login} is {role}"),
            SUPERVISOR: N_("only an admin or a supervisor may do that ({method}), and {login} is {role}"),
            ADMIN: N_("only an admin may do that ({method}), and {login} is {role}"),
        }.get(level, N_("only an {level} may do that ({method}), and {login} is {role}"))
        who = word("role", role) if role in ROLE_LEVEL else role or phrase(N_("not an operator"))
        raise RoleRefused(template, level=level, method=method, login=login, role=who)
