"""The website chat channel, in parts that each do one job:

    connector.py   WebChatConnector: the widget's routes on the core's listener, `send`
    sessions.py    signed visitor session tokens
    visitors.py    what each visitor sees (a JSON-lines log per visitor), and its erasure
    hours.py       office hours: the shared business calendar (omniconsole/calendar.py)
    texts.py       what a visitor reads from the server, in Russian or English
    static/        widget.js and the demo page, shipped as package data

`connectors.webchat:WebChatConnector` (the registry's name for it) and the other names below are
loaded on first use, so a caller that needs only the visitor logs (the CLI's `erase`) does not
import the connector.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "WebChatConnector": "connectors.webchat.connector",
    "OfficeHours": "connectors.webchat.hours",
    "SessionTokens": "connectors.webchat.sessions",
    "VisitorLog": "connectors.webchat.visitors",
    "VisitorLogs": "connectors.webchat.visitors",
    "forget_visitor": "connectors.webchat.visitors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'connectors.webchat' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
