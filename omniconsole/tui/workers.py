"""The one place a failed worker is reported. Every long-lived or dialog worker of the window runs
with `exit_on_error=False` (a failure must not close the operator's window); Textual tells only
the worker's own node (`Worker.StateChanged` does not bubble), so each node that runs workers
takes the `WorkerFailures` mixin and they all end in `report_failure`: the operator is told what
failed, in the words of the key that started it, and why."""

from __future__ import annotations

import logging

from textual.dom import DOMNode
from textual.worker import Worker, WorkerState

from omniconsole.errors import OmniError, error_text
from omniconsole.i18n import N_, _
from omniconsole.tui.keys import live_bindings

log = logging.getLogger(__name__)

#: Workers no key starts, by name.
WORKER_WORDS = {
    "show_selected": N_("Opening the conversation"),
    "offer_templates": N_("Templates"),
    "_fetch": N_("Reading the inbox"),
    "run_search": N_("Search"),
    "start_core": N_("The core in this window"),
}


def worker_words(node: DOMNode, worker: Worker) -> str:
    """What `worker` was doing: the description of the binding whose action it runs (on its
    node, or the node's screen), else a name from WORKER_WORDS."""
    action = worker.name.removeprefix("action_")
    nodes = [node]
    try:
        if node.screen is not node:
            nodes.append(node.screen)
    except Exception:  # noqa: BLE001 - the App has no screen of its own to look at
        pass
    for owner in nodes:
        for binding in live_bindings(owner):
            if binding.action == action and binding.description:
                return _(binding.description)
    return _(WORKER_WORDS.get(worker.name, worker.name.strip("_").replace("_", " ")))


def report_failure(node: DOMNode, worker: Worker) -> None:
    """Tell the operator that `worker` failed: a store's error in its own words, anything else
    as unexpected (with the traceback in the log)."""
    what, error = worker_words(node, worker), worker.error
    if isinstance(error, OmniError):
        log.warning("window: %s failed: %s", what, error)
        node.app.notify(f"{what}: {error_text(error)}", title=_("Not done"), severity="error", markup=False, timeout=8)
    else:
        log.error("window: %s failed", what, exc_info=error)
        node.app.notify(
            _("{what} failed unexpectedly ({error}); the log has the details").format(
                what=what, error=f"{type(error).__name__}: {error}"
            ),
            title=_("Not done"),
            severity="error",
            markup=False,
            timeout=12,
        )


class WorkerFailures:
    """Mixin for a node that runs workers: their failures are reported by `report_failure`."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            report_failure(self, event.worker)
