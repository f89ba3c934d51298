"""Placeholders in an article's body, and filling them for one conversation.

The syntax is fixed by issue #16 (and documented in the README's "Answers" section):

* `{customer.name}`, `{customer.first_name}`, `{operator.name}`, `{conversation.id}`,
  `{customer.attr.KEY}` (any customer attribute), each with an optional fallback after `|`
  (`{customer.first_name|there}`), used when the value is missing or empty;
* `{ask:LABEL}`: the operator is asked for the value on insert;
* `{cursor}`: where the cursor lands after insertion;
* `{{` and `}}`: literal braces;
* anything else in braces is left exactly as written (and `kb import` reports it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}\n]{1,200})\}")
_KNOWN = re.compile(
    r"(customer\.name|customer\.first_name|operator\.name|conversation\.id|customer\.attr\.[^|{}]+)(?:\|(.*))?$", re.S
)
_ASK = re.compile(r"ask:\s*(.+)$", re.S)


@dataclass(frozen=True, slots=True)
class Filled:
    """A body with its placeholders filled: `text`, and `cursor`, the offset (characters) in
    `text` where `{cursor}` stood (None: at the end)."""

    text: str
    cursor: int | None


def unknown_placeholders(body: str) -> list[str]:
    """Placeholders (with their braces) this version does not know, in order of appearance."""
    found = []
    for match in _TOKEN.finditer(body):
        inner = match.group(1)
        if inner is None:
            continue
        if not (_KNOWN.match(inner) or _ASK.match(inner) or inner == "cursor"):
            found.append(match.group(0))
    return found


def ask_labels(body: str) -> list[str]:
    """The labels of `{ask:LABEL}` placeholders, each once, in order: what the operator is
    asked on insert."""
    labels: list[str] = []
    for match in _TOKEN.finditer(body):
        inner = match.group(1)
        if inner is not None and (ask := _ASK.match(inner)):
            label = ask.group(1).strip()
            if label not in labels:
                labels.append(label)
    return labels


def fill(body: str, values: Mapping[str, object], answers: Mapping[str, str] | None = None) -> Filled:
    """Fill the placeholders of `body`.

    `values` maps `customer.name`, `customer.first_name`, `operator.name`, `conversation.id`
    and `customer.attr.KEY` to their values (missing or empty: the fallback, else nothing);
    `answers` maps `{ask:}` labels to what the operator typed (a label not answered is left as
    written, so nothing silently disappears)."""
    answers = answers or {}
    out: list[str] = []
    cursor: int | None = None
    length = 0
    position = 0
    for match in _TOKEN.finditer(body):
        chunk = body[position : match.start()]
        out.append(chunk)
        length += len(chunk)
        position = match.end()
        token = match.group(0)
        inner = match.group(1)
        if token == "{{":
            piece = "{"
        elif token == "}}":
            piece = "}"
        elif inner == "cursor":
            cursor = length
            piece = ""
        elif known := _KNOWN.match(inner):
            value = values.get(known.group(1))
            piece = str(value) if value not in (None, "") else (known.group(2) or "")
        elif ask := _ASK.match(inner):
            label = ask.group(1).strip()
            piece = answers[label] if label in answers else token
        else:
            piece = token
        out.append(piece)
        length += len(piece)
    out.append(body[position:])
    return Filled("".join(out), cursor)


def first_name(name: str) -> str:
    """The first word of a display name ("Иван Петров" -> "Иван"); '' for an empty name."""
    parts = name.split()
    return parts[0] if parts else ""
