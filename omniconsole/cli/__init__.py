"""`omniconsole` and its sub-commands.

Every failure a person can cause or fix (a bad config, an unreadable database, a missing
permission) ends in one line saying what to do, never a traceback.

The parser is in `parser.py`, what commands share in `common.py`, the commands by family in
`window.py` (window, init, serve, demo), `data.py` (backup, stats, doctor, import, export,
erase), `operators.py` and `capabilities.py` (rules, send, kb, report, bot, bench); the work
itself lives in core/, store/ and the capability packages.
"""

from __future__ import annotations

import logging
import os
import sys

from omniconsole.cli.capabilities import cmd_bench, cmd_bot, cmd_kb, cmd_report, cmd_rules, cmd_send, cmd_send_status
from omniconsole.cli.common import _require_admin, _run, _settings, current_user, find_customer, open_store, team_socket
from omniconsole.cli.data import cmd_backup, cmd_doctor, cmd_erase, cmd_export, cmd_import, cmd_stats
from omniconsole.cli.operators import cmd_operator, set_language_of
from omniconsole.cli.parser import CUSTOMER_HELP, _common, build_parser
from omniconsole.cli.window import cmd_demo, cmd_init, cmd_serve, cmd_window, live_feed, open_window, resolve_operator
from omniconsole.errors import OmniError

__all__ = [
    "CUSTOMER_HELP",
    "_common",
    "_require_admin",
    "_run",
    "_settings",
    "build_parser",
    "current_user",
    "find_customer",
    "live_feed",
    "main",
    "open_store",
    "open_window",
    "resolve_operator",
    "set_language_of",
    "team_socket",
]

COMMANDS = {
    "backup": cmd_backup,
    "bench": cmd_bench,
    "bot": cmd_bot,
    "demo": cmd_demo,
    "doctor": cmd_doctor,
    "erase": cmd_erase,
    "export": cmd_export,
    "import": cmd_import,
    "init": cmd_init,
    "kb": cmd_kb,
    "operator": cmd_operator,
    "report": cmd_report,
    "rules": cmd_rules,
    "send": cmd_send,
    "send-status": cmd_send_status,
    "serve": cmd_serve,
    "stats": cmd_stats,
}


def main(argv: list[str] | None = None) -> int:
    # Files we create (attachments, their folders) are shared with the other operators of the
    # team through the group; nobody outside it reads customer data.
    os.umask(0o007)
    # The config's `[ui] language`, else the locale's, before the parser is built: its help
    # texts and argparse's own words speak it (`_settings` applies the config's again).
    from omniconsole.cli.language import choose_cli_language

    choose_cli_language(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        for noisy in ("httpx", "aiosqlite", "telegram", "aioimaplib"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    command = args.command or "help"
    from omniconsole.i18n import _

    try:
        if command == "help":
            return cmd_window(args)
        handler = COMMANDS[command]
        return handler(args) or 0
    except OmniError as exc:
        print(_("omniconsole: error: {message}").format(message=exc.translated()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Whoever read our output went away (`omniconsole report ... | head`): stop without a
        # traceback, and keep the interpreter's last flush from raising again (Python docs,
        # "Note on SIGPIPE" in the signal module).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
