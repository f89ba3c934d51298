"""The database's commands: `backup`, `stats`, `doctor`, `import`, `export` and `erase`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

from omniconsole.cli.common import _require_admin, _run, _settings, current_user, find_customer, open_store, team_socket
from omniconsole.errors import OmniError, UsageError
from omniconsole.models import sanitize_text


def cmd_backup(args: argparse.Namespace) -> int:
    from omniconsole.store.database import backup

    settings = _settings(args)
    if not os.access(settings.database, os.R_OK) and settings.database.exists():
        raise UsageError(
            f"cannot read {settings.database}; run the backup as the core's service user"
            " (`sudo -u omniconsole omniconsole backup FILE`)"
        )
    started = time.perf_counter()
    size = backup(settings.database, Path(args.file))
    print(f"backed up {settings.database} to {args.file}: {size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from omniconsole.store import Store

    settings = _settings(args)

    async def stats():
        store = await Store.open(settings.database, create=False)
        try:
            figures = await store.stats()
            channels = await store.channels()
            hooks = await store.webhook_states()
        finally:
            await store.close()
        print(f"database: {settings.database}")
        print(f"customers: {figures['customers']}")
        print("conversations: " + (", ".join(f"{k} {v}" for k, v in sorted(figures["conversations"].items())) or "none"))
        print("messages:")
        for name, kind, direction, count in figures["messages"]:
            print(f"  {name:<24} {kind:<10} {direction:<6} {count:>10}")
        print("outbound: " + (", ".join(f"{k} {v}" for k, v in sorted(figures["outbound"].items())) or "none"))
        print("channels:")
        for ch in channels:
            detail = f": {sanitize_text(ch.health_detail)}" if ch.health_detail else ""
            print(f"  {ch.name:<24} {ch.kind:<10} {ch.health}{detail}")
        from omniconsole.integrations.webhooks import describe_states

        for line in describe_states(settings, hooks):
            print(line)

    return _run(stats()) or 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from connectors import connector_class
    from connectors.base import ChannelContext, ConnectorError
    from omniconsole.i18n import _
    from omniconsole.store import Store

    settings = _settings(args)
    failures = 0

    async def doctor():
        nonlocal failures
        try:
            store = await Store.open(settings.database, create=False)
            await store.close()
            print("ok    " + _("database {path}").format(path=settings.database))
        except OmniError as exc:
            failures += 1
            print("FAIL  " + _("database: {error}").format(error=exc.translated()))
        if settings.webhooks:
            from omniconsole.integrations.webhooks import doctor_lines

            for ok, line in await doctor_lines(settings):
                failures += 0 if ok else 1
                print(("ok    " if ok else "FAIL  ") + line)
        if not settings.channels:
            print("      " + _("no channels configured (see `omniconsole init`)"))
        if settings.keymap:
            from omniconsole.tui.keys import known_binding_ids, unknown_keymap_ids

            for line in unknown_keymap_ids(settings.keymap, known_binding_ids()):
                print(f"warn  {line}")
        for number, channel in enumerate(settings.channels, start=1):
            context = ChannelContext(number, channel.name, channel.options, settings.data_dir, logging.getLogger("doctor"))
            try:
                connector = connector_class(channel.kind)(context)
                try:
                    async with asyncio.timeout(30):
                        detail = await connector.check()
                finally:
                    await connector.close()
                print(f"ok    {channel.name} ({channel.kind}): {detail}")
            except ConnectorError as exc:
                failures += 1
                print(f"FAIL  {channel.name} ({channel.kind}): {exc.reason}")
            except TimeoutError:
                failures += 1
                print(f"FAIL  {channel.name} ({channel.kind}): " + _("no answer within 30 s"))
            except Exception as exc:  # a doctor reports every channel, whatever breaks one
                failures += 1
                print(f"FAIL  {channel.name} ({channel.kind}): {type(exc).__name__}: {exc}")

    _run(doctor())
    return 1 if failures else 0


def cmd_import(args: argparse.Namespace) -> int:
    if args.import_command == "contacts":
        from omniconsole.core import contacts_import

        settings = _settings(args)
        _require_admin(settings.database, current_user(), "import contacts", service_work=team_socket(settings) is not None)
        return contacts_import.cmd_import_contacts(args, settings, current_user())
    from omniconsole.core import mail_import

    return mail_import.cmd_import(args)


def cmd_export(args: argparse.Namespace) -> int:
    import json

    settings = _settings(args)
    me = current_user()
    _require_admin(settings.database, me, "export a customer's data", team_socket(settings))

    async def export():
        store = await open_store(settings, create=False)
        try:
            customer_id = await find_customer(store, args.customer_id, settings.default_region)
            return await store.export_customer(customer_id, me)
        finally:
            await store.close()

    data = _run(export())
    if data is None:
        return 130
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if args.output:
        out = Path(args.output)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(f"customer {data['customer']['id']}: {len(data['conversations'])} conversations written to {out}", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_erase(args: argparse.Namespace) -> int:

    settings = _settings(args)
    me = current_user()
    _require_admin(settings.database, me, "erase a customer's data", team_socket(settings))

    async def erase(confirmed: bool):
        store = await open_store(settings, create=False)
        try:
            customer_id = await find_customer(store, args.customer_id, settings.default_region)
            profile = await store.customer_profile(customer_id)
            if profile is None:
                raise UsageError(f"there is no customer {customer_id}")
            if not confirmed:
                return profile
            if team_socket(settings) is not None:
                result = await store.erase_customer(customer_id, me)  # the core deletes the files
            else:
                result = await store.erase_customer(customer_id, me, attachments_dir=settings.attachments_dir)
            from connectors.webchat.visitors import forget_visitor

            result["files_deleted"] += sum(forget_visitor(settings.data_dir, v) for v in result.pop("web_visitors", []))
            return result
        finally:
            await store.close()

    if not args.yes:
        profile = _run(erase(False))
        if profile is None:
            return 130
        if not sys.stdin.isatty():
            raise UsageError("erasing cannot be undone; add --yes to confirm when not at a terminal")
        from omniconsole.models import sanitize_text

        who = " ".join(sanitize_text(profile.display_name).split()) or "(no name)"
        answer = input(
            f"Erase customer {profile.id} «{who}»: {len(profile.identities)} identities, {len(profile.conversations)} conversations?"
            " This cannot be undone. Type yes: "
        )
        if answer.strip().lower() != "yes":
            print("nothing erased")
            return 1
    result = _run(erase(True))
    if result is None:
        return 130
    print(
        f"erased customer {result['customer_id']}: {result['messages']} messages emptied, "
        f"{sum(result['identities'].values())} identities and {result['files_deleted']} files deleted; counts kept for statistics"
    )
    if not result.get("log_truncated", True):
        print(
            "note: another process was reading the database, so its write-ahead log still holds old pages;"
            " they are overwritten as work goes on (or run `omniconsole erase` again when the team is off)"
        )
    return 0
