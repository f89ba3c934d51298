"""Sub-commands whose work lives in a capability package (rules, send, kb, report, bot) or in
`omniconsole.bench`: each reads the config here and hands over."""

from __future__ import annotations

import argparse

from omniconsole.cli.common import _settings, current_user


def cmd_rules(args: argparse.Namespace) -> int:
    from omniconsole.automation.commands import run

    return run(args, _settings(args))


def cmd_send(args: argparse.Namespace) -> int:
    from omniconsole.integrations.commands import run_send

    return run_send(args, _settings(args), current_user())


def cmd_send_status(args: argparse.Namespace) -> int:
    from omniconsole.integrations.commands import run_status

    return run_status(args, _settings(args))


def cmd_kb(args: argparse.Namespace) -> int:
    from omniconsole.answers.commands import run

    return run(args, _settings(args), current_user())


def cmd_report(args: argparse.Namespace) -> int:
    from omniconsole.analytics.commands import run

    return run(args, _settings(args))


def cmd_bot(args: argparse.Namespace) -> int:
    from omniconsole.answers.bot_commands import run

    return run(args, _settings(args), current_user())


def cmd_bench(args: argparse.Namespace) -> int:
    from omniconsole import bench

    return bench.main(args)
