"""`omniconsole operator add|list|remove|set`: who may work in the window, their role,
extension, routing and language."""

from __future__ import annotations

import argparse

from omniconsole.cli.common import _run, _settings, current_user, open_store, team_socket
from omniconsole.errors import UsageError


def cmd_operator(args: argparse.Namespace) -> int:
    from omniconsole.i18n import _
    from omniconsole.models import OperatorRole
    from omniconsole.store import ActionError

    settings = _settings(args)
    me = current_user()

    async def operator():
        store = await open_store(settings)
        try:
            operators = await store.operators()
            if args.operator_command == "list":
                from omniconsole.routing.service import team_lines

                routing = {line[0]: line for line in await team_lines(store, settings)}
                for op in operators:
                    extension = _("ext {number}").format(number=op.extension) if op.extension else ""
                    _login, status, load, _skills = routing.get(op.login, (op.login, "", "", ""))
                    print(f"{op.login:<16} {op.role:<6} {extension:<10} {status:<8} {load:<7} {op.display_name}".rstrip())
                if not operators:
                    print(_("no operators yet; `omniconsole operator add LOGIN --admin` registers the first admin"))
                return
            admins = {op.login for op in operators if op.role == OperatorRole.ADMIN}
            # The first admin may be registered by whoever can write the database; in a team
            # setup the core decides (root and its service user count as admins there).
            if admins and me not in admins and team_socket(settings) is None:
                raise UsageError(_("only an admin may manage operators, and {login} is not one").format(login=me))
            if args.operator_command == "add":
                role = OperatorRole.ADMIN if args.admin else OperatorRole.SUPERVISOR if args.supervisor else OperatorRole.AGENT
                extension = args.extension.strip() if args.extension is not None else None
                if extension is not None and not extension:
                    raise UsageError(_("--extension needs a number such as 101"))
                try:
                    await store.add_operator(args.login, args.name, role, actor=me, extension=extension)
                except ActionError as exc:
                    raise UsageError(exc.template, **exc.params) from None  # its words, in the reader's language
                print(
                    _("{login} is now an operator ({role})").format(login=args.login, role=role)
                    + (_(", extension {number}").format(number=extension) if extension else "")
                )
            elif args.operator_command == "set":
                from omniconsole.routing.service import set_operator

                if args.language is not None:
                    await set_language_of(store, args.login, args.language, actor=me)
                    if (args.status, args.capacity, args.skills, args.teams) == (None, None, None, None):
                        return
                split = lambda text: None if text is None else [p for p in text.split(",") if p.strip()]  # noqa: E731
                try:
                    line = await set_operator(
                        store,
                        settings,
                        args.login,
                        actor=me,
                        status=args.status,
                        capacity=args.capacity,
                        skills=split(args.skills),
                        teams=split(args.teams),
                    )
                except ActionError as exc:
                    raise UsageError(exc.template, **exc.params) from None  # its words, in the reader's language
                print(line)
            elif args.operator_command == "remove":
                if not await store.remove_operator(args.login, actor=me):
                    raise UsageError(_("{login} is not an operator").format(login=args.login))
                print(_("{login} is no longer an operator").format(login=args.login))
        finally:
            await store.close()

    return _run(operator()) or 0


async def set_language_of(store, login: str, language: str, *, actor: str) -> None:
    """`operator set LOGIN --language ru`: through `Store.set_operator_language` (an admin's;
    in a team setup the core checks the caller). Prints the result; UsageError in words."""
    from omniconsole.i18n import LanguageError, check_language
    from omniconsole.store import ActionError

    try:
        code = check_language(language) if language.strip() else None
        await store.set_operator_language(login, code, actor=actor)
    except (LanguageError, ActionError) as exc:
        raise UsageError(str(exc)) from None
    from omniconsole.i18n import _

    if code:
        print(_("{login}: language {code}").format(login=login, code=code))
    else:
        print(_("{login}: language from the config or the locale").format(login=login))
