"""TOML config -> typed settings.

Secrets never sit in the config itself: any channel key ending in `_env` names an environment
variable and any key ending in `_file` names a file (which must be mode 0600 or stricter); the
value lands under the key without the suffix (`token_env = "TG_TOKEN"` gives `token`).

(Past 600 lines: the settings of every table of the file, each mistake raised as an English
template with its values so the admin reads it in their language (issue #24); the capability
packages' tables — `[[queues]]`, `[[sla]]`, `[automation]`, `[journeys]` — are parsed by their
own packages, and only their hand-off lives here.)
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omniconsole.errors import UsageError
from omniconsole.i18n import N_, _

DEFAULT_CONFIG_NAME = "omniconsole.toml"
ENV_CONFIG = "OMNICONSOLE_CONFIG"
ENV_DB = "OMNICONSOLE_DB"

# Keys of a channel table that are file paths; where the `_file` suffix means "read a secret"
# these are the exceptions, read as paths instead.
_PATH_KEYS = {"sent_log_file"}


@dataclass(frozen=True)
class ChannelSettings:
    """One `[[channels]]` table: a configured channel account."""

    kind: str
    name: str
    options: dict[str, Any]
    enabled: bool = True

    @property
    def channel_kind(self) -> str:
        """The channel kind the history records: a demo channel stands in for the kind it
        simulates, so its messages carry that channel's badge."""
        if self.kind == "demo":
            return str(self.options.get("simulate", "demo"))
        return self.kind


@dataclass(frozen=True)
class ListenerSettings:
    """The `[listener]` table: the core's HTTP server for webhooks, meant to sit behind a TLS
    reverse proxy. `enabled` None means "when a configured channel has webhooks"."""

    host: str = "127.0.0.1"
    port: int = 8780
    max_body_kb: int = 3072  # Meta allows webhook payloads up to 3 MB
    rate_per_minute: int = 600  # requests per client address
    enabled: bool | None = None
    # Requests from these addresses (or networks, "10.0.0.0/8") are a reverse proxy's: the
    # client is the last address in X-Forwarded-For that is not a proxy (for the rate limit and
    # the logs). None by default: from anyone else X-Forwarded-For is a claim anyone can make.
    trusted_proxies: tuple[str, ...] = ()
    # The address customers reach the listener at from outside (https://support.example.com),
    # for links in mail (the survey page); None: no links are sent.
    public_url: str | None = None


@dataclass(frozen=True)
class SurveySettings:
    """The `[surveys]` table (omniconsole/analytics/surveys.py). `csat`: ask after a resolution;
    `csat_every_days`: not more often per customer; `nps`: ask "would you recommend us" with the
    CSAT question's turn, at most once per customer per `nps_every_days`; `low_csat` (1-5) and
    `low_nps` (0-10): a score below leaves a note in the timeline; `texts`: per language ("en",
    "ru") overrides of the question texts (keys of surveys.DEFAULT_TEXTS)."""

    csat: bool = True
    csat_every_days: int = 7
    nps: bool = False
    nps_every_days: int = 90
    texts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RetentionSettings:
    """The `[retention]` table: what the core forgets with time (store/retention.py).

    `live_days`: events that only drove live updates are deleted after this many days (history
    and audit events are kept). `messages_days`: when set, the text of messages older than this
    many days is erased, as `erase` does (counts kept); None keeps every text."""

    live_days: int = 30
    messages_days: int | None = None


#: Event names a `[[webhooks]]` subscription may list (docs/openapi.yaml "webhooks").
WEBHOOK_EVENTS = (
    "conversation.created",
    "conversation.assigned",
    "conversation.resolved",
    "conversation.reopened",
    "message.received",
    "message.sent",
    "message.delivery",
    "customer.created",
    "customer.updated",
    "customer.merged",
    "customer.unmerged",
    "customer.erased",
    "channel.down",
    "channel.up",
    "survey.answered",
)


@dataclass(frozen=True)
class WebhookSettings:
    """One `[[webhooks]]` table: an endpoint that receives events as signed JSON POSTs.

    `events`: names from WEBHOOK_EVENTS ("*" for all); `secret` (from `secret_env` or a 0600
    `secret_file`) keys the signature; `timeout` seconds per request; failed deliveries are
    retried after `retry_base` * 2^(n-1) seconds, capped at `retry_max`."""

    name: str
    url: str
    events: tuple[str, ...]
    secret: str
    timeout: float = 10.0
    retry_base: float = 1.0
    retry_max: float = 300.0


@dataclass(frozen=True)
class CrmSettings:
    """The `[crm]` table: where the customer card looks the customer up (integrations/crm.py).

    `urls` maps an identity kind (`crm`, `email`, `phone`) to a URL template with `{value}`
    (the address, URL-encoded); tried in that order. `fields` maps a label to a JMESPath
    expression over the answer's JSON (https://jmespath.org); `id_field` finds the record's id
    and `record_url` (with `{id}`) is the link to open it. `token` (from `token_env` or a 0600
    `token_file`) is sent as `Authorization: Bearer`. `timeout` seconds per lookup, `cache_ttl`
    seconds a result is kept, `max_kb` the largest answer read."""

    urls: dict[str, str]
    fields: dict[str, str]
    id_field: str = "id"
    record_url: str = ""
    token: str = ""
    timeout: float = 3.0
    cache_ttl: float = 300.0
    max_kb: int = 1024


@dataclass(frozen=True)
class TeamSettings:
    """The `[team]` table: a team server's core and its socket (docs/team-setup.md).

    `socket`: the core's Unix socket; when set, windows and CLI commands act through the core
    (`omniconsole serve`) and never open the database themselves. `group`: the Unix group whose
    members may connect (the socket is made `0660 root:<group>`-style by the core)."""

    socket: Path | None = None
    group: str = "omniconsole"


@dataclass(frozen=True)
class Settings:
    """Everything the config file says, with paths made absolute."""

    database: Path
    data_dir: Path
    default_region: str = "RU"
    channels: list[ChannelSettings] = field(default_factory=list)
    keymap: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    listener: ListenerSettings = field(default_factory=ListenerSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    team: TeamSettings = field(default_factory=TeamSettings)
    surveys: SurveySettings = field(default_factory=SurveySettings)
    # `[routing]`, `[[queues]]` and `[[calendars]]` (omniconsole/routing/settings.py); None: the
    # defaults (one least-loaded queue for everyone, open around the clock).
    routing: Any = None
    # `[[sla]]` policies (omniconsole/routing/sla/settings.py), in the config's order; none: no clocks.
    sla: tuple = ()
    webhooks: list[WebhookSettings] = field(default_factory=list)
    crm: CrmSettings | None = None
    # `[automation]`: the rules file and its rules and macros (omniconsole/automation/rules.py);
    # None: no rules.
    automation: Any = None
    # `[journeys]` (omniconsole/analytics/journeys.py JourneySettings); None: the defaults.
    journeys: Any = None
    # `[ui] language`: the window's and CLI's language when the operator chose none ('en',
    # 'ru'; None: the locale decides), omniconsole/i18n.py.
    language: str | None = None

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"


def default_settings(database: Path | None = None) -> Settings:
    """Settings when there is no config file: the database under ./data."""
    data_dir = Path("data").resolve()
    return Settings(database=(database or data_dir / "omniconsole.db").resolve(), data_dir=data_dir)


def find_config(explicit: str | None) -> Path | None:
    """The config to read: `--config`, else $OMNICONSOLE_CONFIG, else ./omniconsole.toml."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    candidate = Path(DEFAULT_CONFIG_NAME)
    return candidate if candidate.exists() else None


def load_settings(config: str | Path | None = None, database: str | Path | None = None) -> Settings:
    """Read the config (if any) and apply `--db`; raises UsageError with a one-line reason."""
    path = find_config(str(config) if config else None)
    db_override = Path(database) if database else (Path(os.environ[ENV_DB]) if os.environ.get(ENV_DB) else None)
    if path is None:
        return default_settings(db_override.resolve() if db_override else None)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            N_("config file {path} does not exist; create one with `omniconsole init {path}`"), path=str(path)
        ) from None
    except PermissionError:
        raise UsageError(N_("cannot read config file {path}: permission denied"), path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(N_("config file {path} is not valid TOML: {error}"), path=str(path), error=str(exc)) from None
    except UnicodeDecodeError:
        raise UsageError(N_("config file {path} is not UTF-8 text"), path=str(path)) from None
    return parse_settings(raw, path, db_override)


def parse_settings(raw: dict[str, Any], path: Path, db_override: Path | None = None) -> Settings:
    """Turn the parsed TOML into Settings; relative paths are relative to the config file."""
    base = path.resolve().parent
    store = _table(raw, "store", path)
    identity = _table(raw, "identity", path)
    keymap = _table(raw, "keymap", path)
    data_dir = _resolve(base, store.get("data_dir", "data"))
    database = db_override.resolve() if db_override else _resolve(base, store.get("database", str(data_dir / "omniconsole.db")))
    region = identity.get("default_region", "RU")
    if not isinstance(region, str) or len(region) != 2:
        raise UsageError(N_('{path}: [identity] default_region must be a two-letter country code such as "RU"'), path=str(path))
    channels_raw = raw.get("channels", [])
    if not isinstance(channels_raw, list):
        raise UsageError(N_("{path}: channels must be written as [[channels]] tables"), path=str(path))
    channels: list[ChannelSettings] = []
    names: set[str] = set()
    from connectors import connector_kinds

    kinds = connector_kinds()
    for number, table in enumerate(channels_raw, start=1):
        where = _("{path}: channel #{number}").format(path=path, number=number)
        if not isinstance(table, dict):
            raise UsageError(N_("{where} must be a [[channels]] table"), where=where)
        kind = table.get("kind")
        if kind not in kinds:
            raise UsageError(
                N_("{where}: kind must be one of {kinds} (got {kind!r})"), where=where, kinds=", ".join(kinds), kind=kind
            )
        name = table.get("name") or kind
        if not isinstance(name, str):
            raise UsageError(N_("{where}: name must be text"), where=where)
        if name in names:
            raise UsageError(
                N_("{where}: another channel is already named {name!r}; names must be unique"), where=where, name=name
            )
        names.add(name)
        options = _resolve_secrets(
            {k: v for k, v in table.items() if k not in {"kind", "name", "enabled"}},
            _("{path}: channel {name!r}").format(path=path, name=name),
            base,
        )
        channels.append(ChannelSettings(kind=kind, name=name, options=options, enabled=bool(table.get("enabled", True))))
    routing = _routing_settings(raw, path, base)
    settings = Settings(
        database=database,
        data_dir=data_dir,
        default_region=region.upper(),
        channels=channels,
        keymap={str(k): str(v) for k, v in keymap.items()},
        path=path.resolve(),
        listener=_listener_settings(_table(raw, "listener", path), path),
        retention=_retention_settings(_table(raw, "retention", path), path),
        team=_team_settings(_table(raw, "team", path), path, base),
        surveys=_survey_settings(_table(raw, "surveys", path), path),
        journeys=_journey_settings(_table(raw, "journeys", path), path),
        routing=routing,
        sla=_sla_settings(raw, path, routing),
        webhooks=_webhook_settings(raw.get("webhooks", []), path, base),
        crm=_crm_settings(_table(raw, "crm", path), path, base),
        language=_ui_language(_table(raw, "ui", path), path),
    )
    automation = _automation_settings(_table(raw, "automation", path), path, base, settings)
    return dataclasses.replace(settings, automation=automation) if automation is not None else settings


def _ui_language(table: dict[str, Any], path: Path) -> str | None:
    """`[ui] language = "ru"`: a language omniconsole/i18n.py has a catalog for, else a
    UsageError naming the choices."""
    from omniconsole.i18n import LanguageError, check_language

    unknown = sorted(set(table) - {"language"})
    if unknown:
        raise UsageError(N_("{path}: [ui] has no setting {key!r}; it knows: language"), path=str(path), key=unknown[0])
    value = table.get("language")
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(N_('{path}: [ui] language must be text such as "ru"'), path=str(path))
    try:
        return check_language(value)
    except LanguageError as exc:
        raise UsageError(N_("{path}: [ui] {error}"), path=str(path), error=str(exc)) from None


def _automation_settings(table: dict[str, Any], path: Path, base: Path, settings: Settings) -> Any:
    """`[automation] rules = "rules.toml"`: the rules file read and checked now, so a mistake
    stops the start with one line naming the rule; None without the table."""
    if not table:
        return None
    from omniconsole.automation.rules import AutomationSettings, RulesError, load_rules

    unknown = sorted(set(table) - {"rules"})
    if unknown:
        raise UsageError(N_("{path}: [automation]: unknown key {key!r}; the key is rules"), path=str(path), key=unknown[0])
    rules = table.get("rules")
    if not isinstance(rules, str) or not rules:
        raise UsageError(N_('{path}: [automation]: rules must be the path of a rules file such as "rules.toml"'), path=str(path))
    rules_path = _resolve(base, rules)
    calendars = set(getattr(settings.routing, "calendars", {}) or {"default"})
    try:
        book = load_rules(rules_path, calendars)
    except RulesError as exc:
        raise UsageError(str(exc)) from None
    hooks = {w.name for w in settings.webhooks}
    for rule in [*book.rules, *book.macros]:
        for action in rule.actions:
            if action.kind == "webhook" and action.value not in hooks:
                if rule in book.rules:
                    template = N_("{rules_path}: rule {rule!r}: webhook {webhook!r} is not a [[webhooks]] endpoint of {path}")
                else:
                    template = N_("{rules_path}: macro {rule!r}: webhook {webhook!r} is not a [[webhooks]] endpoint of {path}")
                raise UsageError(template, rules_path=str(rules_path), rule=rule.name, webhook=action.value, path=str(path))
    return AutomationSettings(rules_path, book)


def _team_settings(table: dict[str, Any], path: Path, base: Path) -> TeamSettings:
    """The `[team]` table, checked: `socket` a path (relative to the config), `group` a name."""
    where = f"{path}: [team]"
    known = {"socket", "group"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise UsageError(
            N_("{where}: unknown key {key!r}; the keys are {keys}"), where=where, key=unknown[0], keys=", ".join(sorted(known))
        )
    socket = table.get("socket")
    if socket is not None and (not isinstance(socket, str) or not socket):
        raise UsageError(N_('{where}: socket must be a path such as "/run/omniconsole/core.sock"'), where=where)
    group = table.get("group", "omniconsole")
    if not isinstance(group, str) or not group:
        raise UsageError(N_('{where}: group must be a Unix group name such as "omniconsole"'), where=where)
    return TeamSettings(socket=_resolve(base, socket) if socket else None, group=group)


def _survey_settings(table: dict[str, Any], path: Path) -> SurveySettings:
    """The `[surveys]` table, checked: every problem is one sentence naming the key."""
    where = f"{path}: [surveys]"
    known = {"csat", "csat_every_days", "nps", "nps_every_days", "texts"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise UsageError(
            N_("{where}: unknown key {key!r}; the keys are {keys}"), where=where, key=unknown[0], keys=", ".join(sorted(known))
        )
    values: dict[str, Any] = {}
    for key in ("csat", "nps"):
        if key in table:
            if not isinstance(table[key], bool):
                raise UsageError(N_("{where}: {key} must be true or false"), where=where, key=key)
            values[key] = table[key]
    for key in ("csat_every_days", "nps_every_days"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(N_("{where}: {key} must be a whole number of days (0 or more)"), where=where, key=key)
            values[key] = value
    texts = table.get("texts", {})
    if not isinstance(texts, dict) or not all(isinstance(v, dict) for v in texts.values()):
        raise UsageError(N_("{where}: texts must be tables per language, e.g. [surveys.texts.en]"), where=where)
    for language, entries in texts.items():
        for key, value in entries.items():
            if not isinstance(value, str):
                raise UsageError(N_("{where}: texts.{language}.{key} must be text"), where=where, language=language, key=key)
    values["texts"] = {str(k): dict(v) for k, v in texts.items()}
    return SurveySettings(**values)


def _journey_settings(table: dict[str, Any], path: Path) -> Any:
    """`[journeys]`, checked now so a mistake stops the start."""
    from omniconsole.analytics.journeys import parse_settings

    try:
        return parse_settings(table)
    except ValueError as exc:
        raise UsageError(N_("{path}: [journeys]: {error}"), path=str(path), error=str(exc)) from None


def _routing_settings(raw: dict[str, Any], path: Path, base: Path) -> Any:
    """`[routing]`, `[[queues]]` and `[[calendars]]`, checked now so a mistake stops the start."""
    from omniconsole.routing.settings import RoutingSettingsError, parse_routing

    try:
        return parse_routing(_table(raw, "routing", path), raw.get("queues", []), raw.get("calendars", []), base)
    except RoutingSettingsError as exc:
        raise UsageError(N_("{path}: {error}"), path=str(path), error=str(exc)) from None


def _sla_settings(raw: dict[str, Any], path: Path, routing: Any) -> tuple:
    """`[[sla]]` policies, checked now (their calendars are routing's `[[calendars]]`)."""
    from omniconsole.routing.sla.settings import SlaSettingsError, parse_sla

    try:
        return parse_sla(raw.get("sla", []), routing.calendars)
    except SlaSettingsError as exc:
        raise UsageError(N_("{path}: {error}"), path=str(path), error=str(exc)) from None


def _crm_settings(table: dict[str, Any], path: Path, base: Path) -> CrmSettings | None:
    """The `[crm]` table, checked; None when there is none."""
    from urllib.parse import urlsplit

    import jmespath
    from jmespath.exceptions import JMESPathError

    if not table:
        return None
    where = f"{path}: [crm]"
    kinds = ("crm", "email", "phone")
    known = {f"url_{k}" for k in kinds} | {
        "fields",
        "id_field",
        "record_url",
        "token",
        "token_env",
        "token_file",
        "timeout",
        "cache_ttl",
        "max_kb",
    }
    unknown = sorted(set(table) - known)
    if unknown:
        raise UsageError(
            N_("{where}: unknown key {key!r}; the keys are {keys}"), where=where, key=unknown[0], keys=", ".join(sorted(known))
        )
    urls = {}
    for kind in kinds:
        url = table.get(f"url_{kind}")
        if url is None:
            continue
        if not isinstance(url, str) or "{value}" not in url or urlsplit(url).scheme not in ("http", "https"):
            raise UsageError(
                N_("{where}: url_{kind} must be an http(s) URL with {{value}} where the {kind} goes"), where=where, kind=kind
            )
        urls[kind] = url
    if not urls:
        raise UsageError(N_("{where}: give at least one of url_crm, url_email, url_phone"), where=where)
    fields = table.get("fields", {})
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise UsageError(N_('{where}: fields must be a table of label = "JMESPath expression"'), where=where)
    for label, expression in [*fields.items(), ("id_field", table.get("id_field", "id"))]:
        try:
            jmespath.compile(expression)
        except (JMESPathError, TypeError) as exc:
            raise UsageError(
                N_("{where}: {label}: {expression!r} is not a JMESPath expression: {error}"),
                where=where,
                label=label,
                expression=expression,
                error=str(exc),
            ) from None
    record_url = table.get("record_url", "")
    if not isinstance(record_url, str) or (record_url and "{id}" not in record_url):
        raise UsageError(N_("{where}: record_url must be a URL with {{id}} where the record's id goes"), where=where)
    secrets = _resolve_secrets({k: v for k, v in table.items() if k.startswith("token")}, where, base)
    numbers = {}
    for key, default in (("timeout", 3.0), ("cache_ttl", 300.0), ("max_kb", 1024)):
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise UsageError(N_("{where}: {key} must be a positive number"), where=where, key=key)
        numbers[key] = value
    return CrmSettings(
        urls=urls,
        fields=dict(fields),
        id_field=str(table.get("id_field", "id")),
        record_url=record_url,
        token=str(secrets.get("token", "")),
        timeout=float(numbers["timeout"]),
        cache_ttl=float(numbers["cache_ttl"]),
        max_kb=int(numbers["max_kb"]),
    )


def _webhook_settings(tables: Any, path: Path, base: Path) -> list[WebhookSettings]:
    """The `[[webhooks]]` tables, checked: each problem one sentence naming the endpoint and key."""
    from urllib.parse import urlsplit

    if not isinstance(tables, list):
        raise UsageError(N_("{path}: webhooks must be written as [[webhooks]] tables"), path=str(path))
    known = {"name", "url", "events", "secret", "secret_env", "secret_file", "timeout", "retry_base", "retry_max"}
    result: list[WebhookSettings] = []
    for number, table in enumerate(tables, start=1):
        if not isinstance(table, dict):
            raise UsageError(N_("{path}: webhook #{number} must be a [[webhooks]] table"), path=str(path), number=number)
        name = table.get("name") or f"webhook{number}"
        where = _("{path}: webhook {name!r}").format(path=path, name=name)
        if not isinstance(name, str) or any(w.name == name for w in result):
            raise UsageError(N_("{where}: name must be text, unique among [[webhooks]]"), where=where)
        unknown = sorted(set(table) - known)
        if unknown:
            raise UsageError(
                N_("{where}: unknown key {key!r}; the keys are {keys}"),
                where=where,
                key=unknown[0],
                keys=", ".join(sorted(known)),
            )
        url = table.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise UsageError(N_('{where}: url must be an http(s) URL such as "https://crm.example.com/hooks/omni"'), where=where)
        events = table.get("events", ["*"])
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            raise UsageError(N_('{where}: events must be a list of event names, or ["*"] for all'), where=where)
        if "*" in events:
            events = list(WEBHOOK_EVENTS)
        wrong = [e for e in events if e not in WEBHOOK_EVENTS]
        if wrong:
            raise UsageError(
                N_("{where}: unknown event {event!r}; the events are {events}"),
                where=where,
                event=wrong[0],
                events=", ".join(WEBHOOK_EVENTS),
            )
        secrets = _resolve_secrets({k: v for k, v in table.items() if k.startswith("secret")}, where, base)
        secret = secrets.get("secret")
        if not isinstance(secret, str) or not secret:
            raise UsageError(N_("{where}: a secret is needed to sign the requests; set secret_env or secret_file"), where=where)
        numbers = {}
        for key, default in (("timeout", 10.0), ("retry_base", 1.0), ("retry_max", 300.0)):
            value = table.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise UsageError(N_("{where}: {key} must be a positive number of seconds"), where=where, key=key)
            numbers[key] = float(value)
        result.append(WebhookSettings(name=name, url=url, events=tuple(dict.fromkeys(events)), secret=secret, **numbers))
    return result


def _retention_settings(table: dict[str, Any], path: Path) -> RetentionSettings:
    """The `[retention]` table, checked: whole numbers of days, at least 1."""
    where = f"{path}: [retention]"
    known = {"live_days", "messages_days"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise UsageError(
            N_("{where}: unknown key {key!r}; the keys are {keys}"), where=where, key=unknown[0], keys=", ".join(sorted(known))
        )
    values: dict[str, int | None] = {}
    for key in sorted(known):
        if key not in table:
            continue
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(N_("{where}: {key} must be a whole number of days, at least 1"), where=where, key=key)
        values[key] = value
    return RetentionSettings(**values)


def _listener_settings(table: dict[str, Any], path: Path) -> ListenerSettings:
    """The `[listener]` table, checked: every problem is one sentence naming the key."""
    where = f"{path}: [listener]"
    known = {"host", "port", "max_body_kb", "rate_per_minute", "enabled", "trusted_proxies", "public_url"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise UsageError(
            N_("{where}: unknown key {key!r}; the keys are {keys}"), where=where, key=unknown[0], keys=", ".join(sorted(known))
        )
    defaults = ListenerSettings()
    host = table.get("host", defaults.host)
    if not isinstance(host, str) or not host:
        raise UsageError(N_('{where}: host must be an address such as "127.0.0.1"'), where=where)
    numbers = {}
    for key, low, high in (("port", 0, 65535), ("max_body_kb", 1, 1024 * 1024), ("rate_per_minute", 1, 10**7)):
        value = table.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise UsageError(
                N_("{where}: {key} must be a whole number from {low} to {high}"), where=where, key=key, low=low, high=high
            )
        numbers[key] = value
    enabled = table.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise UsageError(N_("{where}: enabled must be true or false"), where=where)
    proxies = table.get("trusted_proxies", list(defaults.trusted_proxies))
    if not isinstance(proxies, list) or not all(isinstance(p, str) for p in proxies):
        raise UsageError(N_("{where}: trusted_proxies must be a list of addresses"), where=where)
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy.strip(), strict=False)
        except ValueError:
            raise UsageError(
                N_('{where}: trusted_proxies: {proxy!r} is not an IP address or network (such as "127.0.0.1" or "10.0.0.0/8")'),
                where=where,
                proxy=proxy,
            ) from None
    public_url = table.get("public_url")
    if public_url is not None and (not isinstance(public_url, str) or not public_url.startswith(("http://", "https://"))):
        raise UsageError(N_("{where}: public_url must be an address starting with https:// (or http://)"), where=where)
    return ListenerSettings(
        host=host,
        enabled=enabled,
        trusted_proxies=tuple(proxies),
        public_url=public_url.rstrip("/") if public_url else None,
        **numbers,
    )


def _table(raw: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise UsageError(N_("{path}: [{key}] must be a table"), path=str(path), key=key)
    return value


def _resolve(base: Path, value: Any) -> Path:
    p = Path(os.path.expanduser(str(value)))
    return (p if p.is_absolute() else base / p).resolve()


def _resolve_secrets(options: dict[str, Any], where: str, base: Path) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for key, value in options.items():
        if key.endswith("_env") and isinstance(value, str):
            secret = os.environ.get(value)
            if secret is None:
                raise UsageError(
                    N_("{where}: environment variable {value} (for {setting}) is not set"),
                    where=where,
                    value=value,
                    setting=key[:-4],
                )
            resolved[key[:-4]] = secret
        elif key.endswith("_file") and key not in _PATH_KEYS and isinstance(value, str):
            resolved[key[:-5]] = read_secret_file(_resolve(base, value), f"{where}: {key}")
        else:
            resolved[key] = value
    return resolved


def read_secret_file(path: Path, where: str) -> str:
    """Read a secret from a file that only its owner may read (mode 0600 or stricter)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UsageError(N_("{where}: secret file {path} does not exist"), where=where, path=str(path)) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(
            N_("{where}: secret file {path} is readable by others; run `chmod 600 {path}`"), where=where, path=str(path)
        )
    try:
        return path.read_text(encoding="utf-8").strip()
    except PermissionError:
        raise UsageError(N_("{where}: cannot read secret file {path}: permission denied"), where=where, path=str(path)) from None


def template() -> str:
    """The commented config `omniconsole init` writes."""
    return (Path(__file__).with_name("config_template.toml")).read_text(encoding="utf-8")
