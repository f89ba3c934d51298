"""What every sub-command shares: the config and the CLI's language from it, running a
coroutine so SIGTERM stops it cleanly, who the caller is, the store to work on, the admin check
and finding a customer by id, e-mail address or phone number."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from omniconsole import config as config_module
from omniconsole.errors import UsageError
from omniconsole.i18n import N_, _


def _settings(args: argparse.Namespace):
    """The config, and the CLI's language from it (`[ui] language`, else the locale)."""
    from omniconsole.i18n import choose_language, set_language

    settings = config_module.load_settings(args.config, args.db)
    set_language(choose_language(None, settings.language))
    return settings


def _run(coro):
    """Run a coroutine and return its value; SIGTERM stops it as Ctrl-C does, so `finally`
    blocks still run (a stopped run returns None)."""

    async def wrapper():
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await coro
        except asyncio.CancelledError:
            return None

    return asyncio.run(wrapper())


def current_user() -> str:
    """The operator's login: the Unix user of this process's real uid, from the password
    database. Never LOGNAME or USER: anyone can set those (issue #13)."""
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def team_socket(settings) -> Path | None:
    """The core's socket when the config describes a team setup (`[team] socket`), else None."""
    return settings.team.socket


async def open_store(settings, *, create: bool = True):
    """The store this command works on: in a team setup a client of the core's socket (which
    decides who we are and what we may do), alone the database itself."""
    if team_socket(settings) is not None:
        from omniconsole.core.remote import RemoteStore

        return await RemoteStore.connect(team_socket(settings))
    from omniconsole.store import Store

    return await Store.open(settings.database, create=create)


def _require_admin(database: Path, me: str, what: str, socket_path: Path | None = None, *, service_work: bool = False) -> None:
    """Personal-data work is for admins (`what`: an N_-marked verb phrase, "import contacts") (once any admin is registered). In a team setup the
    core checks it for each call instead (omniconsole/store/access.py)."""
    from omniconsole.models import OperatorRole
    from omniconsole.store import Store

    if socket_path is not None:
        return
    # In a team setup bulk work such as imports runs as the owner of the database (the core's
    # service user), who could write it anyway.
    try:
        if service_work and os.geteuid() == Path(database).stat().st_uid:
            return
    except OSError:
        pass

    async def admins():
        store = await Store.open(database)
        try:
            return {op.login for op in await store.operators() if op.role == OperatorRole.ADMIN}
        finally:
            await store.close()

    found = asyncio.run(admins())
    if found and me not in found:
        raise UsageError(N_("only an admin may {what}, and {login} is not one"), what=_(what), login=me)


async def find_customer(store, given: str, region: str) -> int:
    """The customer `given` names: an id (`123`, `#123`), or an e-mail address or phone number
    one of their identities holds (read as identities are stored, phones in `region`).
    Raises UsageError in words when it names nobody."""
    from omniconsole.core.identity import parse_typed_identity

    text = str(given).strip()
    if text.lstrip("#").isdigit() and len(text.lstrip("#")) < 9:  # ids are small; a long run of digits is a phone
        customer_id = int(text.lstrip("#"))
        if await store.customer_profile(customer_id) is None:
            raise UsageError(N_("there is no customer {id}"), id=customer_id)
        return await store.live_customer(customer_id)
    identity = parse_typed_identity(text, region)
    if identity is None:
        raise UsageError(N_("{text!r} is neither a customer id nor an e-mail address or valid phone number"), text=text)
    kind, address = identity
    owner = await store.identity_owner(kind.value, address)
    if owner is None:
        if kind.value == "email":
            raise UsageError(N_("no customer has the e-mail address {address}"), address=address)
        raise UsageError(N_("no customer has the phone number {address}"), address=address)
    return owner
