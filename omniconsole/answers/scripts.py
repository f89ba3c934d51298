"""Operator scripts: a Markdown numbered list of steps; a step may end with `→ N` (go to step
N) or with one or more `if CONDITION: → N` branches (`->` is accepted for `→`).

    1. Greet the customer and ask for the order number. → 2
    2. Is the order paid? if yes: → 3 if no: → 4
    3. Tell the delivery date.
    4. Send the payment link.

A step's text may go on over several lines (indented or not, until the next number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STEP = re.compile(r"^\s{0,3}(\d{1,3})[.)]\s+(.*)$")
_BRANCH = re.compile(r"(?:\bif\s+([^:→]+?)\s*:\s*)?(?:→|->)\s*(\d{1,3})\s*$", re.I)


@dataclass(frozen=True, slots=True)
class Branch:
    """Where a step leads: to step `target`, under `condition` (None: always)."""

    condition: str | None
    target: int


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a script: its number, its text (the branches cut off) and its branches."""

    number: int
    text: str
    branches: tuple[Branch, ...] = ()


def parse_script(body: str) -> list[Step]:
    """The numbered steps of a script's body, in order (text before the first step, such as a
    heading, is not a step). A body without a numbered list has no steps."""
    raw: list[tuple[int, list[str]]] = []
    for line in body.splitlines():
        match = _STEP.match(line)
        if match:
            raw.append((int(match.group(1)), [match.group(2).strip()]))
        elif raw and line.strip():
            raw[-1][1].append(line.strip())
    steps = []
    for number, lines in raw:
        text = " ".join(lines)
        branches: list[Branch] = []
        while match := _BRANCH.search(text):
            branches.insert(0, Branch(match.group(1).strip() if match.group(1) else None, int(match.group(2))))
            text = text[: match.start()].rstrip()
        steps.append(Step(number, text, tuple(branches)))
    return steps


def broken_branches(steps: list[Step]) -> list[str]:
    """Branches that lead to a step that does not exist, in words (reported by `kb import`)."""
    numbers = {step.number for step in steps}
    return [
        f"step {step.number} leads to step {branch.target}, which does not exist"
        for step in steps
        for branch in step.branches
        if branch.target not in numbers
    ]
