"""The library as files: one article per Markdown file with YAML front matter (the format is
fixed by issue #16 and documented in the README's "Answers" section).

    ---
    id: delivery-late          # default: the file name without .md and without a .LANG suffix
    title: Delivery is late    # required
    kind: answer               # answer | article | script (default: article)
    shortcode: late            # typed as /late in the composer
    language: en               # ru | en (default: the file name's .LANG suffix, else any)
    tags: [delivery]
    questions: ["where is the courier?"]
    channels: [telegram, email]   # channel kinds where it may be used (default: all)
    internal: false            # operators only; scripts and bodies with {ask:} default to true
    attachments: [map.png]     # files beside the article, sent with it
    ---
    Hello {customer.first_name|there}, ...

`read_folder` reads a folder and its subfolders; a file it cannot take is refused with a
one-line reason naming it while every other file is read. YAML is parsed by PyYAML's safe
loader (no tags that construct objects). Unknown front-matter keys are kept in `extra`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from omniconsole.answers.placeholders import ask_labels, unknown_placeholders
from omniconsole.answers.scripts import broken_branches, parse_script
from omniconsole.errors import OmniError
from omniconsole.i18n import N_
from omniconsole.store.answers import KINDS, ArticleRecord

#: An article file larger than this is refused (issue #16): bytes.
MAX_ARTICLE_BYTES = 1024 * 1024
LANGUAGES = ("ru", "en")
_KNOWN_KEYS = {"id", "title", "kind", "shortcode", "language", "tags", "questions", "channels", "internal", "attachments"}
_LANG_SUFFIX = re.compile(r"^(?P<key>.+)\.(?P<lang>[a-z]{2})$")
_UNSAFE_NAME = re.compile(r"[^\w.-]+", re.UNICODE)


class ArticleError(OmniError, ValueError):
    """A file that cannot be read as an article; the message is one line naming the problem
    (an OmniError, so the window's library editor shows it in the operator's language)."""


@dataclass(slots=True)
class FolderRead:
    """What a folder holds: the articles read (in path order), the files refused with a
    reason each (`problems`, one line per file, naming it) and warnings about files that were
    read all the same (unknown placeholders, a branch to a missing step, a missing attachment)."""

    records: list[ArticleRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refused_paths: set[str] = field(default_factory=set)


def default_key(path: Path) -> tuple[str, str | None]:
    """(id, language) a file name gives: `delivery.ru.md` -> ('delivery', 'ru'), `faq.md` ->
    ('faq', None)."""
    stem = path.name[: -len(".md")] if path.name.endswith(".md") else path.stem
    match = _LANG_SUFFIX.match(stem)
    if match and match.group("lang") in LANGUAGES:
        return match.group("key"), match.group("lang")
    return stem, None


def split_front_matter(text: str) -> tuple[str, str]:
    """(front matter YAML, body) of an article's text; ArticleError without front matter."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ArticleError(N_("no front matter: the file must start with a line '---', then YAML with a title, then '---'"))
    for index in range(1, len(lines)):
        if lines[index].strip() in ("---", "..."):
            return "".join(lines[1:index]), "".join(lines[index + 1 :])
    raise ArticleError(N_("the front matter is not closed: no second '---' line"))


def _strings(meta: dict, name: str) -> tuple[str, ...]:
    value = meta.get(name)
    if value is None:
        return ()
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, list) and all(isinstance(item, (str, int, float)) and not isinstance(item, bool) for item in value):
        return tuple(str(item).strip() for item in value if str(item).strip())
    raise ArticleError(N_("'{name}' must be a list of texts"), name=name)


def parse_article(text: str, path: Path, relative: str | None = None) -> tuple[ArticleRecord, list[str]]:
    """One article from a file's text: (record, warnings). Raises ArticleError for what
    cannot be taken (bad YAML, no title, an unknown kind or language, wrong types)."""
    front, body = split_front_matter(text)
    try:
        meta = yaml.safe_load(front) if front.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if mark is not None:
            raise ArticleError(
                N_("the front matter is not valid YAML at line {line}: {problem}"), line=mark.line + 2, problem=problem
            ) from None
        raise ArticleError(N_("the front matter is not valid YAML: {problem}"), problem=problem) from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ArticleError(N_("the front matter must be a mapping of keys (title: ..., tags: [...])"))
    file_key, file_language = default_key(path)
    key = meta.get("id", file_key)
    if not isinstance(key, (str, int)) or isinstance(key, bool) or not str(key).strip():
        raise ArticleError(N_("'id' must be a non-empty text"))
    key = str(key).strip()
    title = meta.get("title")
    if not isinstance(title, (str, int, float)) or isinstance(title, bool) or not str(title).strip():
        raise ArticleError(N_("no title: the front matter needs 'title: ...'"))
    kind = meta.get("kind", "article")
    if kind not in KINDS:
        raise ArticleError(N_("kind {kind} is not one of {choices}"), kind=repr(kind), choices=", ".join(KINDS))
    language = meta.get("language", file_language)
    if language is not None and language not in LANGUAGES:
        raise ArticleError(
            N_("language {language} is not one of {choices}"), language=repr(language), choices=", ".join(LANGUAGES)
        )
    if file_language and language != file_language:
        raise ArticleError(
            N_("the file name says language {file_language} but the front matter says {language}"),
            file_language=repr(file_language),
            language=repr(language),
        )
    shortcode = meta.get("shortcode")
    if shortcode is not None:
        if not isinstance(shortcode, (str, int)) or isinstance(shortcode, bool) or not str(shortcode).strip("/ "):
            raise ArticleError(N_("'shortcode' must be a short text such as 'late'"))
        shortcode = str(shortcode).strip().lstrip("/")
        if any(char.isspace() for char in shortcode):
            raise ArticleError(
                N_("shortcode {shortcode} has a space in it; it is typed after '/' as one word"), shortcode=repr(shortcode)
            )
    body = body.strip("\n").rstrip()
    internal_default = kind == "script" or bool(ask_labels(body))
    internal = meta.get("internal", internal_default)
    if not isinstance(internal, bool):
        raise ArticleError(N_("'internal' must be true or false"))
    record = ArticleRecord(
        key=key,
        title=str(title).strip(),
        body=body,
        language=language or "",
        kind=kind,
        shortcode=shortcode,
        tags=_strings(meta, "tags"),
        questions=_strings(meta, "questions"),
        channels=_strings(meta, "channels"),
        internal=internal,
        attachments=_strings(meta, "attachments"),
        extra={k: v for k, v in meta.items() if k not in _KNOWN_KEYS},
        source="file",
        source_path=relative or path.name,
    )
    warnings = [f"unknown placeholder {p} left as written" for p in unknown_placeholders(body)]
    if kind == "script":
        steps = parse_script(body)
        if not steps:
            warnings.append("a script without numbered steps (1. ..., 2. ...)")
        warnings.extend(broken_branches(steps))
    for name in record.attachments:
        if not (path.parent / name).is_file():
            warnings.append(f"attachment {name} is not beside the file")
    return record, warnings


def read_article(path: Path, relative: str | None = None) -> tuple[ArticleRecord, list[str]]:
    """Read one article file (size, encoding, then the format); ArticleError names the problem."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ArticleError(N_("cannot read it: {reason}"), reason=exc.strerror) from None
    if size > MAX_ARTICLE_BYTES:
        raise ArticleError(N_("{size} MB, over the 1 MB limit for an article"), size=f"{size / 1024 / 1024:.1f}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArticleError(N_("cannot read it: {reason}"), reason=exc.strerror) from None
    if b"\x00" in data:
        raise ArticleError(N_("not a text file (binary content); an article is UTF-8 Markdown"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArticleError(N_("not UTF-8 text (byte {byte}); save it as UTF-8"), byte=exc.start) from None
    return parse_article(text, path, relative)


def read_folder(directory: Path) -> FolderRead:
    """Every `*.md` article under `directory` (subfolders too, hidden ones skipped), in path
    order. A file that cannot be taken, or that repeats an id and language already read, is
    refused with one line naming it (and for a duplicate, the other file); the rest is read."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ArticleError(N_("{directory} is not a folder"), directory=str(directory))
    result = FolderRead()
    first_file: dict[tuple[str, str], str] = {}
    for path in sorted(directory.rglob("*.md")):
        relative = path.relative_to(directory).as_posix()
        if any(part.startswith(".") for part in path.relative_to(directory).parts) or not path.is_file():
            continue
        try:
            record, warnings = read_article(path, relative)
        except ArticleError as exc:
            result.problems.append(f"{relative}: refused: {exc}")
            result.refused_paths.add(relative)
            continue
        ident = (record.key, record.language)
        if ident in first_file:
            language = record.language or "any language"
            result.problems.append(
                f"{relative}: refused: duplicate of id {record.key!r} ({language}) already read from {first_file[ident]}"
            )
            result.refused_paths.add(relative)
            continue
        first_file[ident] = relative
        result.records.append(record)
        result.warnings.extend(f"{relative}: warning: {warning}" for warning in warnings)
    return result


def article_text(record: ArticleRecord) -> str:
    """The file an article is written as: front matter with every field that differs from the
    default, unknown keys kept, then the body."""
    meta: dict = {"id": record.key, "title": record.title}
    if record.kind != "article":
        meta["kind"] = record.kind
    if record.shortcode:
        meta["shortcode"] = record.shortcode
    if record.language:
        meta["language"] = record.language
    for name in ("tags", "questions", "channels", "attachments"):
        if getattr(record, name):
            meta[name] = list(getattr(record, name))
    if record.internal != (record.kind == "script" or bool(ask_labels(record.body))):
        meta["internal"] = record.internal
    for key, value in record.extra.items():
        if key not in meta:
            meta[key] = value
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, default_flow_style=False, width=100)
    return f"---\n{front}---\n{record.body}\n"


def file_name(record: ArticleRecord) -> str:
    """`ID.LANG.md` (or `ID.md` for an article in any language), with characters a file name
    should not hold replaced."""
    safe = _UNSAFE_NAME.sub("-", record.key).strip(".-") or "article"
    return f"{safe}.{record.language}.md" if record.language else f"{safe}.md"


def write_folder(records: list[ArticleRecord], directory: Path) -> list[str]:
    """Write articles as files into `directory` (created if needed); returns the names written.
    Two keys that make the same file name get a numbered second name instead of overwriting."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for record in records:
        name = file_name(record)
        number = 2
        while name in written:
            stem = name[: -len(".md")]
            name = f"{stem}-{number}.md"
            number += 1
        (directory / name).write_text(article_text(record), encoding="utf-8")
        written.append(name)
    return written


#: The demo shop's library, shipped inside the package (`data/kb` in a checkout is a link to it).
DEMO_LIBRARY = Path(__file__).with_name("demo_library")


@dataclass(slots=True)
class ImportReport:
    """What `kb import` did: one line per file (and per removed article), then the counts."""

    lines: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def refused(self) -> int:
        return self.counts.get("refused", 0)


async def import_folder(store, directory: Path, actor: str, *, prune: bool = False, dry_run: bool = False) -> ImportReport:
    """Sync a folder of article files into the store's library (see `read_folder` and
    `Store.kb_sync`): idempotent; refused files keep their articles even with `prune`."""
    read = read_folder(directory)
    synced = await store.kb_sync(read.records, actor, prune=prune, dry_run=dry_run, keep_paths=read.refused_paths)
    report = ImportReport()
    counts = {"new": 0, "updated": 0, "unchanged": 0, "removed": 0, "refused": len(read.problems), "warnings": len(read.warnings)}
    for line in synced:
        counts[line.action] += 1
        what = f"{line.key} ({line.language})" if line.language else line.key
        report.lines.append(f"{line.path or '-'}: {line.action}: {what}")
    report.lines.extend(read.problems)
    report.lines.extend(read.warnings)
    report.counts = counts
    return report
