"""`omniconsole bench`: the performance budgets of DESIGN.md, measured on this machine.

One module per thing measured, each with a `main(args)` that prints its figures:

    omniconsole bench ingest   ingest.py  messages/s through the whole ingest path; DB growth per 100k
    omniconsole bench query    query.py   p50/p95 of inbox page, timeline, profile and search
    omniconsole bench mail     mail.py    mailbox import speed next to `notmuch new`
    omniconsole bench tui      tui.py     window start, keystroke-to-repaint, memory (the window's bench)
    omniconsole bench kb       kb.py      answers picker and suggestion latency over 1,000 articles
    omniconsole bench report   report.py  30-day and all-time report, wallboard refresh
    omniconsole bench routing  routing.py routing decision p50/p95: 10,000 arrivals, 50 operators
    omniconsole bench rules    rules.py   automation rules' pipeline step and follower p50/p95
    omniconsole bench sla      sla.py     SLA clocks on 100,000 open conversations: wake-ups, inbox pages
    omniconsole bench journeys journeys.py journeys report over 1M messages, one customer's journey

Modules are imported only when their benchmark runs (the window's bench pulls in Textual).
"""

from __future__ import annotations

import argparse
import importlib

#: `bench WHAT` -> the module (under omniconsole.bench unless dotted) whose main(args) runs it.
BENCHMARKS = {
    "ingest": "ingest",
    "query": "query",
    "mail": "mail",
    "tui": "tui",
    "kb": "kb",
    "report": "report",
    "routing": "routing",
    "rules": "rules",
    "sla": "sla",
    "journeys": "journeys",
}


def main(args: argparse.Namespace) -> int:
    """Run the benchmark named by `args.bench_command`; returns the process exit code."""
    module = importlib.import_module(f"omniconsole.bench.{BENCHMARKS[args.bench_command]}")
    return module.main(args)
