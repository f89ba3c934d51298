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
from omniconsole.cli.language import decimal, figure, words_text
from omniconsole.errors import OmniError, UsageError
from omniconsole.i18n import N_, Np_, _, ngettext, pgettext
from omniconsole.models import sanitize_text

#: The words `stats` prints for a conversation's status, a message's delivery state, a
#: direction and a channel's health (the values stay English in --json and the database).
STATE_WORDS = (
    Np_("conversations by status", "open"),
    Np_("conversations by status", "pending"),
    Np_("conversations by status", "snoozed"),
    Np_("conversations by status", "resolved"),
    Np_("conversations by status", "spam"),
    Np_("delivery state", "queued"),
    Np_("delivery state", "sending"),
    Np_("delivery state", "sent"),
    Np_("delivery state", "delivered"),
    Np_("delivery state", "read"),
    Np_("delivery state", "failed"),
    Np_("direction", "in"),
    Np_("direction", "out"),
    Np_("channel health", "unknown"),
    Np_("channel health", "up"),
    Np_("channel health", "degraded"),
    Np_("channel health", "down"),
)


def _counts(context: str, counts: dict[str, int]) -> str:
    """`open 3, resolved 12` in the current language (`none` when empty)."""
    return ", ".join(f"{pgettext(context, key)} {figure(value)}" for key, value in sorted(counts.items())) or _("none")


def cmd_backup(args: argparse.Namespace) -> int:
    from omniconsole.store.database import backup

    settings = _settings(args)
    if not os.access(settings.database, os.R_OK) and settings.database.exists():
        raise UsageError(
            N_("cannot read {path}; run the backup as the core's service user (`sudo -u omniconsole omniconsole backup FILE`)"),
            path=str(settings.database),
        )
    started = time.perf_counter()
    size = backup(settings.database, Path(args.file))
    print(
        _("backed up {path} to {file}: {mb} MB in {seconds} s").format(
            path=settings.database, file=args.file, mb=decimal(size / 1e6), seconds=decimal(time.perf_counter() - started)
        )
    )
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
        print(_("database: {path}").format(path=settings.database))
        print(_("customers: {n}").format(n=figure(figures["customers"])))
        print(_("conversations: {list}").format(list=_counts("conversations by status", figures["conversations"])))
        print(_("messages:"))
        for name, kind, direction, count in figures["messages"]:
            print(f"  {name:<24} {kind:<10} {pgettext('direction', direction):<6} {figure(count):>10}")
        print(_("outbound: {list}").format(list=_counts("delivery state", figures["outbound"])))
        print(_("channels:"))
        for ch in channels:
            detail = f": {sanitize_text(ch.health_detail)}" if ch.health_detail else ""
            print(f"  {ch.name:<24} {ch.kind:<10} {pgettext('channel health', ch.health)}{detail}")
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
                print(f"ok    {channel.name} ({channel.kind}): {words_text(detail)}")
            except ConnectorError as exc:
                failures += 1
                print(f"FAIL  {channel.name} ({channel.kind}): {words_text(exc.words)}")
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
        _require_admin(settings.database, current_user(), N_("import contacts"), service_work=team_socket(settings) is not None)
        return contacts_import.cmd_import_contacts(args, settings, current_user())
    from omniconsole.core import mail_import

    return mail_import.cmd_import(args)


def cmd_export(args: argparse.Namespace) -> int:
    import json

    settings = _settings(args)
    me = current_user()
    _require_admin(settings.database, me, N_("export a customer's data"), team_socket(settings))

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
        n = len(data["conversations"])
        words = ngettext(
            "customer {id}: {n} conversation written to {path}", "customer {id}: {n} conversations written to {path}", n
        )
        print(words.format(id=data["customer"]["id"], n=figure(n), path=out), file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_erase(args: argparse.Namespace) -> int:

    settings = _settings(args)
    me = current_user()
    _require_admin(settings.database, me, N_("erase a customer's data"), team_socket(settings))

    async def erase(confirmed: bool):
        store = await open_store(settings, create=False)
        try:
            customer_id = await find_customer(store, args.customer_id, settings.default_region)
            profile = await store.customer_profile(customer_id)
            if profile is None:
                raise UsageError(N_("there is no customer {id}"), id=customer_id)
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
            raise UsageError(N_("erasing cannot be undone; add --yes to confirm when not at a terminal"))
        from omniconsole.models import sanitize_text

        who = " ".join(sanitize_text(profile.display_name).split()) or _("(no name)")
        identities = ngettext("{n} identity", "{n} identities", len(profile.identities)).format(n=figure(len(profile.identities)))
        conversations = ngettext("{n} conversation", "{n} conversations", len(profile.conversations))
        answer = input(
            _("Erase customer {id} «{name}»: {identities}, {conversations}? This cannot be undone. Type yes: ").format(
                id=profile.id,
                name=who,
                identities=identities,
                conversations=conversations.format(n=figure(len(profile.conversations))),
            )
        )
        if answer.strip().lower() != "yes":
            print(_("nothing erased"))
            return 1
    result = _run(erase(True))
    if result is None:
        return 130
    print(
        _(
            "erased customer {id}: {messages} messages emptied, {identities} identities and {files} files deleted;"
            " counts kept for statistics"
        ).format(
            id=result["customer_id"],
            messages=figure(result["messages"]),
            identities=figure(sum(result["identities"].values())),
            files=figure(result["files_deleted"]),
        )
    )
    if not result.get("log_truncated", True):
        print(
            _(
                "note: another process was reading the database, so its write-ahead log still holds old pages;"
                " they are overwritten as work goes on (or run `omniconsole erase` again when the team is off)"
            )
        )
    return 0
