"""`omniconsole kb import | export | list`: the answers library from the command line.

    omniconsole kb import data/kb [--prune] [--dry-run] [--json]
    omniconsole kb export DIR
    omniconsole kb list [--json]

Every change is written with the Unix user as the actor; `import` is for admins and
supervisors once any admin is registered (as the window's library editing is).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from omniconsole.answers.library import ArticleError, import_folder, write_folder
from omniconsole.errors import UsageError
from omniconsole.i18n import N_, _, ngettext
from omniconsole.models import sanitize_text

#: Roles that edit the library; an agent proposes (issue #16).
EDITOR_ROLES = frozenset({"admin", "supervisor"})


def add_parser(sub: argparse._SubParsersAction, common) -> None:
    """The `kb` sub-command and its actions (`common` adds --config/--db/-v)."""
    p = sub.add_parser("kb", help=_("the answers library: import, export and list articles"))
    kb = p.add_subparsers(dest="kb_command", metavar="ACTION", required=True)
    q = kb.add_parser("import", help=_("sync a folder of Markdown articles into the library (idempotent)"))
    common(q)
    q.add_argument("directory", metavar="DIR", help=_("folder of .md articles (subfolders are read)"))
    q.add_argument("--prune", action="store_true", help=_("remove articles that came from files no longer in DIR"))
    q.add_argument("--dry-run", action="store_true", help=_("only say what each file would do"))
    q.add_argument("--json", action="store_true", help=_("print the counts as one JSON object on the last line"))
    q = kb.add_parser("export", help=_("write the library as ID.LANG.md files (window-written articles too)"))
    common(q)
    q.add_argument("directory", metavar="DIR")
    q = kb.add_parser("list", help=_("articles with usage: times used, share edited, last used"))
    common(q)
    q.add_argument("--unused-first", action="store_true", help=_("least recently used first (never used on top): what is stale"))
    q.add_argument("--json", action="store_true", help=_("one JSON object per article instead of the table"))


def run(args: argparse.Namespace, settings, me: str) -> int:
    """Run one `kb` action; returns the exit code (1 when an import refused a file)."""
    from omniconsole.store import Store

    async def main() -> int:
        store = await Store.open(settings.database)
        try:
            if args.kb_command == "import":
                return await _import(store, args, me)
            if args.kb_command == "export":
                records = await store.kb_articles()
                names = write_folder(records, Path(args.directory))
                print(
                    ngettext("wrote {n} article to {path}", "wrote {n} articles to {path}", len(names)).format(
                        n=len(names), path=args.directory
                    )
                )
                return 0
            return await _list(store, args)
        finally:
            await store.close()

    return asyncio.run(main())


async def _import(store, args: argparse.Namespace, me: str) -> int:
    operators = await store.operators()
    roles = {op.login: str(op.role) for op in operators}
    if any(role == "admin" for role in roles.values()) and roles.get(me) not in EDITOR_ROLES:
        raise UsageError(N_("only an admin or a supervisor may change the library, and {login} is not one"), login=me)
    try:
        report = await import_folder(store, Path(args.directory), me, prune=args.prune, dry_run=args.dry_run)
    except ArticleError as exc:
        raise UsageError(str(exc)) from None
    for line in report.lines:
        print(sanitize_text(line))
    c = report.counts
    prefix = _("would be: ") if args.dry_run else ""
    print(
        prefix
        + _(
            "{new} new, {updated} updated, {unchanged} unchanged, {removed} removed, {refused} refused, {warnings} warnings"
        ).format(**{key: c[key] for key in ("new", "updated", "unchanged", "removed", "refused", "warnings")})
    )
    if args.json:
        print(json.dumps({**c, "dry_run": args.dry_run}))
    return 1 if report.refused else 0


async def _list(store, args: argparse.Namespace) -> int:
    records = await store.kb_articles()
    figures = await store.kb_figures()
    now = time.time()
    if not records:
        print(_("the library is empty; `omniconsole kb import DIR` brings in a folder of articles"))
        return 0
    if args.unused_first:

        def last_used(record):
            f = figures.get((record.key, record.language))
            return (f.last_used or 0.0) if f else 0.0

        records = sorted(records, key=lambda r: (last_used(r), r.key, r.language))
    if not args.json:
        print(f"{_('id'):<28} {_('lang'):<4} {_('kind'):<7} {_('used'):>5} {_('edited'):>6} {_('last used'):<10} {_('title')}")
    for record in records:
        f = figures.get((record.key, record.language))
        used = f.used if f else 0
        share = f.share_edited if f else None
        last = f.last_used if f else None
        if args.json:
            print(
                json.dumps(
                    {
                        "id": record.key,
                        "language": record.language,
                        "kind": record.kind,
                        "title": record.title,
                        "source": record.source,
                        "used": used,
                        "share_edited": share,
                        "last_used": last,
                        "shown": f.shown if f else 0,
                    },
                    ensure_ascii=False,
                )
            )
            continue
        edited = f"{share:.0%}" if share is not None else "-"
        when = _("{n}d ago").format(n=f"{(now - last) / 86400:.0f}") if last else _("never")
        print(
            sanitize_text(
                f"{record.key:<28} {record.language or '*':<4} {record.kind:<7} {used:>5} {edited:>6} {when:<10} {record.title}"
            )
        )
    return 0
