"""`omniconsole bench mail`: how fast a mailbox is imported, next to `notmuch new`.

    omniconsole bench mail                      # builds a 5,000-mail Maildir first
    omniconsole bench mail --messages 50000 --json
    omniconsole bench mail --maildir ~/Maildir

Both tools get the same mail: notmuch indexes a copy of the Maildir (the copy is made before
the clock starts, so both read from a warm page cache) into a fresh database of its own; the
import goes into a fresh omniconsole database. The synthetic corpus is deterministic (seeded):
support mail from Russian- and English-writing customers in UTF-8, KOI8-R, windows-1251 and
ISO-8859-1, quoted-printable, base64 and 8bit, some HTML alternatives, some attachments,
threads whose replies quote the history, a few auto-replies, one unreadable file, and an
`.Archive` folder that holds the first mail of some threads whose replies sit in the inbox.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import quopri
import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime
from pathlib import Path

from connectors.mail.mailbox import iter_maildir
from omniconsole.config import Settings
from omniconsole.core.mail_import import ImportSummary, count_maildir, import_mailbox
from omniconsole.errors import UsageError
from omniconsole.store import Store

SUPPORT = ("Поддержка магазина", "support@shop.example")

_RU_WORDS = (
    "заказ доставка возврат оплата курьер посылка чайник куртка размер деньги карта номер адрес сегодня завтра "
    "неделю магазин товар упаковка коробка сломан пришёл вернуть обменять скидка чек гарантия ремонт пункт выдачи "
    "подскажите пожалуйста здравствуйте спасибо когда почему можно нужно очень уже ещё снова опять вчера"
).split()
_EN_WORDS = (
    "order delivery refund payment courier parcel kettle jacket size money card number address today tomorrow "
    "week store item package box broken arrived return exchange discount receipt warranty repair pickup point "
    "could please hello thanks when why can need very already still again yesterday tracking invoice"
).split()
_RU_NAMES = (
    "Анна Смирнова",
    "Иван Петров",
    "Ольга Кузнецова",
    "Дмитрий Соколов",
    "Елена Попова",
    "Сергей Лебедев",
    "Мария Козлова",
    "Алексей Новиков",
    "Татьяна Морозова",
    "Никита Волков",
)
_EN_NAMES = (
    "Alice Brown",
    "John Smith",
    "Emma Wilson",
    "Oliver Jones",
    "Sophie Taylor",
    "James Davies",
    "Grace Evans",
    "Harry Thomas",
    "Chloe Roberts",
    "Jack Walker",
)
_RU_SUBJECTS = (
    "Где мой заказ",
    "Возврат товара",
    "Не пришла посылка",
    "Вопрос по оплате",
    "Обмен размера",
    "Сломан чайник",
    "Скидка на товар",
    "Счёт для юрлица",
)
_EN_SUBJECTS = (
    "Where is my order",
    "Refund request",
    "Parcel not delivered",
    "Payment question",
    "Exchange a size",
    "Broken kettle",
    "Discount code",
    "Invoice for my company",
)


@dataclass(frozen=True, slots=True)
class _Customer:
    name: str
    address: str
    russian: bool


def _sentence(rng: random.Random, words: tuple[str, ...] | list[str]) -> str:
    text = " ".join(rng.choice(words) for _ in range(rng.randint(6, 16)))
    return text[0].upper() + text[1:] + rng.choice((".", ".", "?", "!"))


def _paragraphs(rng: random.Random, russian: bool) -> str:
    words = _RU_WORDS if russian else _EN_WORDS
    return "\n\n".join(" ".join(_sentence(rng, words) for _ in range(rng.randint(2, 5))) for _ in range(rng.randint(1, 3)))


def _encode_header(text: str, charset: str) -> str:
    try:
        text.encode("ascii")
        return text
    except UnicodeEncodeError:
        return Header(text, charset).encode()


def _text_part(text: str, charset: str, encoding: str, subtype: str = "plain") -> bytes:
    data = text.replace("\n", "\r\n").encode(charset, "replace")
    if encoding == "base64":
        body = base64.encodebytes(data)
    elif encoding == "quoted-printable":
        body = quopri.encodestring(data)
    else:
        body = data
    return (f'Content-Type: text/{subtype}; charset="{charset}"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n').encode() + body


def _html(text: str) -> str:
    paragraphs = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
    return f'<html><body><div style="font-family:Arial">{paragraphs}</div></body></html>'


def synthetic_mail(
    rng: random.Random,
    customer: _Customer,
    *,
    seq: int,
    subject: str,
    sent: datetime,
    message_id: str,
    references: list[str],
    quoted: str,
    auto_reply: bool = False,
) -> tuple[bytes, str]:
    """One customer's mail as raw bytes, and its text (for the next reply to quote)."""
    if customer.russian:
        charset = rng.choices(("utf-8", "koi8-r", "windows-1251"), (6, 2, 2))[0]
    else:
        charset = rng.choices(("us-ascii", "utf-8", "iso-8859-1"), (5, 3, 2))[0]
    encoding = rng.choices(("quoted-printable", "base64", "8bit"), (5, 3, 2))[0]
    if charset == "us-ascii":
        encoding = "7bit"
    text = _paragraphs(rng, customer.russian)
    if auto_reply:
        text = "Я в отпуске до понедельника." if customer.russian else "I am out of the office until Monday."
    signature = f"\n\n-- \n{customer.name}\n+7 999 {seq % 1000:03d}-{seq % 97:02d}-{seq % 89:02d}"
    body = text + signature
    if quoted:
        intro = "пишет" if customer.russian else "wrote"
        history = "\n".join("> " + line for line in quoted.splitlines()[:40])
        body += f"\n\n{format_datetime(sent - timedelta(hours=5))}, {SUPPORT[0]} <{SUPPORT[1]}> {intro}:\n{history}"
    header_charset = charset if charset != "us-ascii" else "utf-8"
    headers = [
        f"Return-Path: <{customer.address}>",
        f"Received: from mx{seq % 7}.mail.example ([10.0.{seq % 250}.{seq % 199}]) by mx.shop.example with ESMTPS id {seq:x}"
        f"\r\n\tfor <{SUPPORT[1]}>; {format_datetime(sent)}",
        f"From: {_encode_header(customer.name, header_charset)} <{customer.address}>",
        f"To: {_encode_header(SUPPORT[0], 'utf-8')} <{SUPPORT[1]}>",
        f"Subject: {_encode_header(subject, header_charset)}",
        f"Date: {format_datetime(sent)}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
    ]
    if references:
        headers.append(f"In-Reply-To: {references[-1]}")
        headers.append("References: " + "\r\n ".join(references[-10:]))
    if auto_reply:
        headers.append("Auto-Submitted: auto-replied")
    plain = _text_part(body, charset, encoding)
    boundary = f"=_part_{seq:08d}"
    if not auto_reply and rng.random() < 0.4:
        html = _text_part(_html(text), charset, encoding, "html")
        content = (
            f'Content-Type: multipart/alternative; boundary="{boundary}a"\r\n\r\n--{boundary}a\r\n'.encode()
            + plain
            + f"\r\n--{boundary}a\r\n".encode()
            + html
            + f"\r\n--{boundary}a--\r\n".encode()
        )
    else:
        content = plain
    if not auto_reply and rng.random() < 0.06:
        kind = rng.choice((("application/pdf", "pdf"), ("image/jpeg", "jpg"), ("image/png", "png")))
        name = ("Счёт " if customer.russian else "invoice ") + f"{seq}.{kind[1]}"
        attachment = base64.encodebytes(rng.randbytes(rng.randint(10_000, 60_000)))
        content = (
            f'Content-Type: multipart/mixed; boundary="{boundary}m"\r\n\r\n--{boundary}m\r\n'.encode()
            + content
            + f"\r\n--{boundary}m\r\nContent-Type: {kind[0]}\r\nContent-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment; filename*=utf-8''{_rfc2231(name)}\r\n\r\n".encode()
            + attachment
            + f"\r\n--{boundary}m--\r\n".encode()
        )
    return "\r\n".join(headers).encode() + b"\r\n" + content, text


def _rfc2231(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def build_corpus(root: Path, messages: int, seed: int = 1) -> Path:
    """Write a deterministic synthetic support Maildir of `messages` mails under `root`."""
    rng = random.Random(seed)
    customers = []
    for number in range(max(1, messages // 5)):
        russian = rng.random() < 0.5
        name = rng.choice(_RU_NAMES if russian else _EN_NAMES)
        domain = rng.choice(("mail.ru", "yandex.ru", "пример.рф") if russian else ("gmail.com", "example.com", "outlook.com"))
        customers.append(_Customer(name, f"customer{number}@{domain}", russian))
    # A thread: the customer's first mail, then replies to our answers (which are not in the
    # inbox: they went out by SMTP), each quoting the history. Threads interleave in time.
    start = datetime(2023, 1, 9, 9, 0, tzinfo=UTC)
    mails: list[tuple[datetime, str, bytes]] = []  # (delivered, folder, raw)
    seq = 0
    clock = start
    while seq < messages:
        customer = rng.choice(customers)
        subject = rng.choice(_RU_SUBJECTS if customer.russian else _EN_SUBJECTS)
        archived = rng.random() < 0.1
        references: list[str] = []
        quoted = ""
        sent = clock
        clock += timedelta(seconds=rng.randint(20, 400))
        for turn in range(min(rng.choice((1, 1, 2, 2, 3, 4, 5)), messages - seq)):
            message_id = f"<{seq}.{rng.getrandbits(32):08x}@{customer.address.split('@')[1].encode('idna').decode()}>"
            auto = turn > 0 and rng.random() < 0.03
            reply_subject = subject if turn == 0 else ("Re: " + subject)
            raw, text = synthetic_mail(
                rng,
                customer,
                seq=seq,
                subject=reply_subject,
                sent=sent,
                message_id=message_id,
                references=references,
                quoted=quoted,
                auto_reply=auto,
            )
            folder = ".Archive" if archived and turn == 0 else ""
            mails.append((sent, folder, raw))
            references = [*references, message_id, f"<omniconsole.{seq}.1@shop.example>"]
            quoted = text
            sent += timedelta(hours=rng.randint(1, 30), seconds=rng.randint(0, 3600))
            seq += 1
    # One file that is no mail at all (a stray upload in the Maildir).
    mails.append((start, "", b"\x00\x01binary junk, not a mail\xff" * 40))
    mails.sort(key=lambda item: item[0])
    maildir = root / "Maildir"
    for folder in ("", ".Archive"):
        for sub in ("cur", "new", "tmp"):
            (maildir / folder / sub).mkdir(parents=True, exist_ok=True)
    for number, (delivered, folder, raw) in enumerate(mails):
        # Maildir names start with the delivery time, so a sorted listing is delivery order.
        name = f"{int(delivered.timestamp())}.M{number:06d}P1.bench,S={len(raw)}:2,S"
        (maildir / folder / "cur" / name).write_bytes(raw)
    return maildir


def notmuch_new(maildir: Path, workdir: Path) -> tuple[float, int] | None:
    """Seconds `notmuch new` takes to index a copy of `maildir`, and the mails it counted;
    None when notmuch is not installed."""
    binary = shutil.which("notmuch")
    if binary is None:
        return None
    copy = workdir / "notmuch-maildir"
    shutil.copytree(maildir, copy, symlinks=True)
    config = workdir / "notmuch-config"
    config.write_text(
        f"[database]\npath={copy}\n\n[user]\nname=Bench\nprimary_email={SUPPORT[1]}\n\n"
        "[new]\ntags=unread;inbox;\nignore=\n\n[maildir]\nsynchronize_flags=true\n",
        encoding="utf-8",
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "NOTMUCH_CONFIG": str(config), "LANG": "C.UTF-8"}
    started = time.perf_counter()
    done = subprocess.run([binary, f"--config={config}", "new", "--quiet"], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise UsageError(f"notmuch new failed: {done.stderr.strip() or done.stdout.strip()}")
    count = subprocess.run(
        [binary, f"--config={config}", "count", "--output=files", "*"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    return seconds, int(count or 0)


async def _import(maildir: Path, workdir: Path, workers: int | None) -> ImportSummary:
    settings = Settings(database=workdir / "bench-mail.db", data_dir=workdir / "data")
    store = await Store.open(settings.database)
    try:
        return await import_mailbox(store, settings, iter_maildir(maildir), channel_name="bench import", workers=workers)
    finally:
        await store.close()


def main(args: argparse.Namespace) -> int:
    """Run the mail benchmark and print the figures (`--json`: one JSON object last)."""
    with tempfile.TemporaryDirectory(prefix="omniconsole-bench-mail-") as tmp:
        workdir = Path(tmp)
        if args.maildir:
            maildir = Path(args.maildir).expanduser()
            if not ((maildir / "cur").is_dir() or (maildir / "new").is_dir()):
                raise UsageError(f"{maildir} is not a Maildir: it has no cur/ or new/ folder")
        else:
            print(f"writing a synthetic Maildir of {args.messages:,} mails ...", flush=True)
            maildir = build_corpus(workdir, args.messages)
        total = count_maildir(maildir)
        size = sum(p.stat().st_size for p in maildir.rglob("*") if p.is_file())
        print(f"corpus: {maildir} ({total:,} files, {size / 1e6:,.1f} MB)", flush=True)

        notmuch_dir = workdir / "notmuch"
        notmuch_dir.mkdir()
        notmuch = notmuch_new(maildir, notmuch_dir)

        print("importing ...", flush=True)
        summary = asyncio.run(_import(maildir, workdir, args.workers))

    result: dict = {
        "messages": summary.messages,
        "imported": summary.imported,
        "unreadable": len(summary.unreadable),
        "conversations": summary.conversations,
        "reordered": summary.reordered,
        "import_seconds": round(summary.seconds, 2),
        "import_msgs_per_s": round(summary.rate),
        "notmuch_seconds": None,
        "notmuch_msgs_per_s": None,
        "ratio": None,
    }
    print(
        f"omniconsole import: {summary.messages:>8,} mails in {summary.seconds:7.1f} s  {summary.rate:>8,.0f} mails/s"
        f"  ({summary.imported:,} stored, {summary.conversations:,} conversations, {len(summary.unreadable)} unreadable)"
    )
    if notmuch is None:
        print("notmuch is not installed here: no comparison (apt-get install notmuch)")
    else:
        seconds, indexed = notmuch
        rate = indexed / seconds if seconds > 0 else 0.0
        result.update(
            notmuch_seconds=round(seconds, 2),
            notmuch_msgs_per_s=round(rate),
            ratio=round(summary.rate / rate, 2) if rate else None,
        )
        print(f"notmuch new:        {indexed:>8,} mails in {seconds:7.1f} s  {rate:>8,.0f} mails/s")
        print(f"ratio (import / notmuch): {result['ratio']}")
    if args.json:
        print(json.dumps(result))
    return 0
