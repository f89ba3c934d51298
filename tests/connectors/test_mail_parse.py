"""The mail parser against a corpus of awkward mail (tests/connectors/mail_corpus/) and
generated extremes (a 10 MB attachment, 4,000-character lines, hostile nesting)."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.mail.mailbox import iter_maildir, iter_mbox
from connectors.mail_parse import (
    decode_text,
    fold_position,
    html_to_text,
    message_key,
    parse_mail,
)
from omniconsole.models import IdentityKind

CORPUS = Path(__file__).with_name("mail_corpus")


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def parsed(name: str):
    return parse_mail(corpus(name), external_id=message_key(corpus(name)))


def shown(message) -> str:
    """What the timeline shows before the fold."""
    fold = message.meta.get("fold_at")
    return message.body if fold is None else message.body[:fold]


# -- charsets ----------------------------------------------------------------------------------


def test_koi8r_body_subject_and_name():
    message = parsed("koi8r.eml")
    assert message.identity_kind is IdentityKind.EMAIL
    assert message.address == "ivan@example.ru"
    assert message.sender_name == "Иван Петров"
    assert message.subject == "Заказ не пришёл"
    assert message.body == "Здравствуйте!\nМой заказ номер 1042 так и не пришёл. Что мне делать?"
    assert message.sent_at == datetime(2026, 3, 2, 7, 15, tzinfo=UTC)
    assert message.thread_key == message.external_id == "<koi8r-1@example.ru>"


def test_windows_1251_quoted_printable():
    message = parsed("cp1251.eml")
    assert message.sender_name == "Ольга"
    assert message.subject == "Возврат товара"
    assert message.body == "Хочу вернуть чайник, он течёт."


def test_iso_8859_5_base64():
    message = parsed("iso8859_5.eml")
    assert message.subject == "Привет"
    assert message.body == "Добрый день! Подскажите размер куртки."


def test_charset_labelled_utf8_but_written_in_windows_1251():
    assert parsed("mislabelled_charset.eml").body == "Спасибо, посылку получила."


def test_unknown_charset_is_guessed():
    assert parsed("unknown_charset.eml").body == "Когда будет скидка на телевизоры?"


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        ("Привет, мир".encode("koi8-r"), "windows-1251", "Привет, мир"),  # KOI8-R labelled as 1251
        ("Grüße aus München".encode("latin-1"), None, "Grüße aus München"),  # Western text stays Western
        ("日本語".encode(), "x-bogus", "日本語"),
        (b"plain ascii", "us-ascii", "plain ascii"),
    ],
)
def test_decode_text(data, declared, expected):
    assert decode_text(data, declared)[0] == expected


def test_undecodable_bytes_become_replacement_characters():
    text, _ = decode_text(b"\x81\x8d\x8f\x90\x9d ok", "utf-8")
    assert text.endswith(" ok")


# -- headers -----------------------------------------------------------------------------------


def test_rfc2047_headers_and_reply_to():
    message = parsed("rfc2047_headers.eml")
    assert message.sender_name == "Мария «Маша» Иванова"
    assert message.subject == "Вопрос по доставке and more"
    assert message.meta["reply_to"] == "masha.home@example.ru"
    assert message.meta["to"] == ["support@shop.example"]


def test_raw_8bit_header_is_decoded_not_mangled():
    raw = (
        b"From: "
        + "Пётр".encode("cp1251")
        + b" <petr@example.ru>\r\nSubject: "
        + "Счёт".encode("cp1251")
        + b"\r\nMessage-ID: <h8@x>\r\n\r\nbody\r\n"
    )
    message = parse_mail(raw)
    assert message.subject == "Счёт"
    assert message.sender_name == "Пётр"
    assert message.address == "petr@example.ru"


def test_terminal_escapes_are_removed_from_headers_and_body():
    raw = b"From: \x1b]0;pwned\x07Eve <eve@example.com>\r\nSubject: hi \x1b[31mred\x1b[0m\r\nMessage-ID: <esc@x>\r\n\r\nbody \x1b]52;c;ZXZpbA==\x07 end\r\n"
    message = parse_mail(raw)
    for text in (message.subject, message.body, message.sender_name):
        assert "\x1b" not in text and "\x07" not in text
    assert message.body == "body  end"


def test_threading_keys_in_order_without_duplicates():
    message = parsed("quoted_reply.eml")
    assert message.thread_key == "<reply-2@example.ru>"
    assert message.reply_to_keys == ("<omniconsole.17.1@shop.example>", "<question-1@example.ru>")


def test_message_id_without_angle_brackets_is_normalised():
    message = parse_mail(b"From: a@example.com\r\nMessage-ID: abc@example.com \r\nIn-Reply-To: <p@x> (comment)\r\n\r\nhi\r\n")
    assert message.thread_key == "<abc@example.com>"
    assert message.external_id == "<abc@example.com>"
    assert message.reply_to_keys == ("<p@x>",)


def test_missing_message_id_and_broken_date():
    raw = corpus("no_message_id.eml")
    message = parse_mail(raw)
    assert message.thread_key.endswith("@omniconsole.invalid>")
    assert message.external_id == message.thread_key == parse_mail(raw).thread_key == message_key(raw)
    assert message.sent_at.tzinfo is not None
    assert message.address == "nomid@example.com"
    assert message.body == "Mail without a Message-ID and with a broken Date."


# -- bodies ------------------------------------------------------------------------------------


def test_html_only_becomes_readable_text_with_links():
    message = parsed("html_only.eml")
    assert message.body == (
        "Hello team,\n\n"
        "I ordered from my order page (https://shop.example/orders/1042) but the tracking link "
        "https://track.example/1042 is empty.\n\n"
        "• Order 1042\n• Paid & confirmed\n\n"
        "Thanks,\nFan"
    )
    assert "alert" not in message.body and "color" not in message.body
    assert message.attachments == ()


def test_html_blockquote_is_folded_like_plain_quotes():
    text = html_to_text(
        "<div>Yes, that works.</div><div>On Mon, Ivan wrote:</div><blockquote><p>Can you ship on Friday?</p></blockquote>"
    )
    assert text.splitlines()[-1] == "> Can you ship on Friday?"
    assert text[: fold_position(text)].strip() == "Yes, that works."


def test_nested_multipart_prefers_plain_and_keeps_files():
    message = parsed("nested_multipart.eml")
    assert message.body == "The plain version. The photo of the broken box is below."
    assert [(a.filename, a.mime_type) for a in message.attachments] == [
        ("box.png", "image/png"),
        ("receipt.pdf", "application/pdf"),
    ]
    assert message.attachments[0].data.startswith(b"\x89PNG")
    assert message.attachments[1].data.startswith(b"%PDF")
    assert message.attachments[1].size == len(message.attachments[1].data)


def test_inline_image_without_a_name_is_kept():
    message = parsed("inline_image.eml")
    assert message.body == "Look at this:"
    assert [(a.filename, a.mime_type) for a in message.attachments] == [("attachment-1.png", "image/png")]


def test_rfc2231_and_rfc2047_cyrillic_file_names():
    message = parsed("rfc2231_cyrillic_filename.eml")
    assert message.body == "Счёт и акт во вложении."
    assert [a.filename for a in message.attachments] == ["Счёт № 1042.pdf", "Акт сверки.pdf"]
    assert all(a.data.startswith(b"%PDF") for a in message.attachments)


def test_hostile_file_names_cannot_leave_the_directory():
    raw = (
        b"From: a@example.com\r\nMessage-ID: <fn@x>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n"
        b'--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="../../etc/passwd"\r\n\r\nx\r\n--b--\r\n'
    )
    (attachment,) = parse_mail(raw).attachments
    assert "/" not in attachment.filename and not attachment.filename.startswith(".")


def test_broken_mime_is_read_as_far_as_possible():
    message = parsed("broken_mime.eml")
    assert "unreadable" not in message.flags
    assert message.body.startswith("Привет, это текст")
    assert "CloseBoundaryNotFoundDefect" in message.meta["defects"]
    assert [a.mime_type for a in message.attachments] == ["image/png"]


def test_format_flowed_is_joined():
    message = parsed("quoted_reply.eml")
    assert message.body.startswith("Thank you, the parcel arrived today. Everything is in order and the box was not damaged.\n")


# -- quoted history and signature --------------------------------------------------------------


def test_quoted_history_and_signature_are_folded_but_kept():
    message = parsed("quoted_reply.eml")
    assert shown(message) == "Thank you, the parcel arrived today. Everything is in order and the box was not damaged."
    hidden = message.body[message.meta["fold_at"] :]
    assert hidden.startswith("\n\nOn Thu, 12 Mar 2026")
    assert "> your parcel is on its way." in hidden and "Ivan Petrov" in hidden


def test_outlook_style_russian_history_is_folded():
    message = parsed("outlook_reply_ru.eml")
    assert shown(message) == "Добрый день, оплату провели вчера.\n\nС уважением,\nЕлена"
    assert message.subject == "RE: Заказ"


@pytest.mark.parametrize(
    ("body", "visible"),
    [
        ("Thanks!\n\n-- \nAnna, shop manager", "Thanks!"),
        ('Спасибо!\n\n20.03.2026, 10:00, "Поддержка" <support@shop.example> пишет:\n> Ваш заказ готов', "Спасибо!"),
        ("Ok\n\nSent from my iPhone", "Ok"),
        ("Да\n\n-----Original Message-----\nFrom: x", "Да"),
    ],
)
def test_fold_patterns(body, visible):
    position = fold_position(body)
    assert position is not None and body[:position] == visible


@pytest.mark.parametrize(
    "body",
    [
        "> quoted question\nmy answer\n> another question\nanother answer",  # an inline reply stays whole
        "> only a quote",  # nothing of their own: nothing to fold to
        "No history here.\nJust two lines.",
        "I think he wrote: nothing useful",
    ],
)
def test_no_fold(body):
    assert fold_position(body) is None


# -- automation --------------------------------------------------------------------------------


def test_auto_reply_is_flagged():
    message = parsed("auto_reply.eml")
    assert message.flags == {"auto_reply"}
    assert message.subject == "Ответ: Re: Your order"


def test_list_mail_is_not_automatic_but_says_it_came_through_a_list():
    # A newsletter's only mark is Precedence: bulk, which a person's mail through a list also
    # carries: nothing in it says a robot answered, so somebody reads it.
    message = parsed("precedence_bulk.eml")
    assert message.flags == frozenset()
    assert message.meta["list"] == {"precedence": "bulk"}


PERSON = (
    "From: Ivan Petrov <ivan@example.ru>\r\nTo: support@shop.example\r\nSubject: Order 1042\r\n"
    "Date: Wed, 11 Mar 2026 10:00:00 +0300\r\nMessage-ID: <person-1@example.ru>\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n{extra}\r\nWhere is my order?\r\n"
)
# What a robot reliably puts on its mail (RFC 3834): the other headers must not spoil it.
ROBOT = "Auto-Submitted: auto-replied\r\n"


@pytest.mark.parametrize(
    ("header", "person_flags", "robot_flags"),
    [
        # Outlook/Exchange put this on people's mail (to a distribution list, from add-ins).
        ("X-Auto-Response-Suppress: All", set(), {"auto_reply"}),
        ("X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply", set(), {"auto_reply"}),
        # List and bulk marks: every mail through a list or group has them.
        ("Precedence: list", set(), {"auto_reply"}),
        ("Precedence: bulk", set(), {"auto_reply"}),
        ("Precedence: junk", set(), {"auto_reply"}),
        ("List-Id: Shop help <help.shop.example>", set(), {"auto_reply"}),
        ("List-Unsubscribe: <mailto:help+unsubscribe@shop.example>", set(), {"auto_reply"}),
        ("Mailing-list: list help@shop.example; contact help+owners@shop.example", set(), {"auto_reply"}),
        # RFC 3834's own "no" is a person.
        ("Auto-Submitted: no", set(), {"auto_reply"}),
        # Signals only robots set.
        ("Auto-Submitted: auto-generated", {"auto_reply"}, {"auto_reply"}),
        ("X-Autoreply: yes", {"auto_reply"}, {"auto_reply"}),
        ("X-Autorespond: Out of office", {"auto_reply"}, {"auto_reply"}),
        ("Precedence: auto_reply", {"auto_reply"}, {"auto_reply"}),
        ("Return-Path: <>", {"auto_reply"}, {"auto_reply"}),
        ("X-Failed-Recipients: nobody@example.org", {"bounce", "auto_reply"}, {"bounce", "auto_reply"}),
    ],
)
def test_automation_signals_on_a_persons_mail_and_a_robots(header, person_flags, robot_flags):
    person = PERSON.format(extra=header + "\r\n").encode()
    robot = PERSON.format(extra=ROBOT + header + "\r\n").encode()
    assert parse_mail(person).flags == person_flags
    assert parse_mail(robot).flags == robot_flags


def test_bounce_is_flagged_and_tied_to_the_mail_that_bounced():
    message = parsed("bounce_dsn.eml")
    assert message.flags == {"bounce", "auto_reply"}
    assert "<omniconsole.42.1@shop.example>" in message.reply_to_keys
    assert message.meta["bounce"]["recipients"] == ["nobody@example.org"]
    assert message.meta["bounce"]["status"] == ["5.1.1"]
    assert "User unknown" in message.meta["bounce"]["diagnostic"][0]
    assert "could not\nbe delivered" in message.body


def test_ordinary_mail_has_no_flags():
    for name in ("koi8r.eml", "quoted_reply.eml", "html_only.eml", "nested_multipart.eml"):
        assert parsed(name).flags == frozenset(), name


# -- what cannot be read -----------------------------------------------------------------------


def test_binary_junk_is_kept_raw_and_says_so():
    raw = corpus("not_mail.eml")
    message = parse_mail(raw, external_id="junk-1")
    assert message.flags == {"unreadable"}
    assert message.body == "could not be read: no mail headers found"
    assert message.external_id == "junk-1"
    (original,) = message.attachments
    assert (original.filename, original.mime_type, original.data) == ("original.eml", "message/rfc822", raw)


def test_empty_message():
    message = parse_mail(b"", external_id="empty")
    assert message.flags == {"unreadable"} and message.body == "could not be read: the message is empty"


def test_mutilated_corpus_never_raises():
    """Every corpus file cut short and with random bytes flipped still gives a message."""
    rng = random.Random(5)
    for path in sorted(CORPUS.glob("*.eml")):
        raw = path.read_bytes()
        for _ in range(40):
            data = bytearray(raw[: rng.randint(0, len(raw))])
            for _ in range(rng.randint(0, 8)):
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            message = parse_mail(bytes(data), external_id="x")
            assert isinstance(message.body, str)


def test_hostile_nesting_does_not_crash():
    depth = 3000
    head = b"From: a@example.com\r\nMessage-ID: <deep@x>\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    parts = b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1) for i in range(depth))
    message = parse_mail(head + parts + b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n" % depth)
    assert message.external_id == "<deep@x>"
    assert message.body in {"deep", ""} or message.body.startswith("could not be read")


# -- big and long ------------------------------------------------------------------------------


def test_ten_megabyte_attachment():
    payload = random.Random(1).randbytes(10 * 1024 * 1024)
    raw = (
        b"From: big@example.com\r\nMessage-ID: <big@x>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe scan is attached.\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''%D1%81%D0%BA%D0%B0%D0%BD.bin\r\n\r\n"
        + base64.encodebytes(payload).replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )
    message = parse_mail(raw)
    assert message.body == "The scan is attached."
    (attachment,) = message.attachments
    assert attachment.filename == "скан.bin"
    assert attachment.data == payload and attachment.size == len(payload)


def test_four_thousand_character_lines():
    line = ("слово " * 700)[:4000]
    body = "\n".join([line] * 50 + ["> " + line] * 50)
    raw = b"From: long@example.com\r\nMessage-ID: <long@x>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body.encode()
    message = parse_mail(raw)
    assert message.body.startswith(line[:100])
    assert message.meta["fold_at"] == len("\n".join([line] * 50))


# -- mailbox files for the import ---------------------------------------------------------------


def test_iter_maildir_is_stable_and_idempotent(tmp_path):
    names = sorted(p.name for p in CORPUS.glob("*.eml"))
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
        (tmp_path / ".Archive" / sub).mkdir(parents=True)
    for number, name in enumerate(names):
        target = tmp_path / ("cur" if number % 2 else "new") / f"{1700000000 + number}.M{number}P1.host:2,S"
        target.write_bytes(corpus(name))
    (tmp_path / ".Archive" / "cur" / "1.M1P1.host:2,").write_bytes(corpus("koi8r.eml"))
    (tmp_path / "tmp" / "incomplete").write_bytes(b"half a mail")
    first = list(iter_maildir(tmp_path))
    assert first == list(iter_maildir(tmp_path))
    assert len(first) == len(names) + 1
    assert ("<koi8r-1@example.ru>", corpus("koi8r.eml")) in [(entry.key, entry.raw) for entry in first]
    assert all(entry.raw != b"half a mail" for entry in first)
    # The file name's leading digits are the delivery time: the fallback date of a mail without one.
    assert first[0].delivered_at == datetime.fromtimestamp(1700000001, UTC)


def test_iter_mbox_splits_and_unquotes(tmp_path):
    mbox = tmp_path / "archive.mbox"
    mbox.write_bytes(
        b"From ivan@example.ru Mon Mar  2 10:15:00 2026\n"
        b"From: ivan@example.ru\nMessage-ID: <m1@x>\nSubject: one\n\nfirst line\n>From the shop, with love\n\n"
        b"From anna@example.ru Mon Mar  2 11:00:00 2026\n"
        b"From: anna@example.ru\nSubject: two\n\nno id here\n"
    )
    messages = list(iter_mbox(mbox))
    assert [entry.key for entry in messages][0] == "<m1@x>"
    assert messages[0].raw.endswith(b"first line\nFrom the shop, with love\n")
    assert messages[1].key.endswith("@omniconsole.invalid>")
    assert parse_mail(messages[1].raw).body == "no id here"
    assert messages[1].delivered_at == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert messages == list(iter_mbox(mbox))


# -- undeclared and unknown 8-bit bytes in headers and parameters (issue #14, case 01's kind) ---


def _q(text: str, charset: str = "cp1251") -> str:
    """`text` as quoted-printable bytes of `charset`, as an encoded word's payload writes them."""
    return "".join(f"={b:02X}" if b > 127 or b in b"=?_ " else chr(b) for b in text.encode(charset))


def _mixed(*parts: bytes, boundary: bytes = b"b") -> bytes:
    head = b"From: a@example.com\r\nMessage-ID: <kind@x>\r\nContent-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n"
    return head + b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts) + b"--" + boundary + b"--\r\n"


TEXT_PART = b"Content-Type: text/plain; charset=utf-8\r\n\r\nsee the file"


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        # RFC 2231 with a charset that says nothing: guessed like a body.
        (b"attachment; filename*=unknown-8bit''" + _q("Счёт.pdf").replace("=", "%").encode(), "Счёт.pdf"),
        # RFC 2231 continuations, UTF-8.
        (b"attachment; filename*0*=utf-8''%D0%90%D0%BA%D1%82; filename*1*=%20%E2%84%96%205.pdf", "Акт № 5.pdf"),
        # An encoded word inside the quotes (Outlook, Gmail), labelled unknown-8bit.
        (b'attachment; filename="=?unknown-8bit?Q?' + _q("Договор.docx").encode() + b'?="', "Договор.docx"),
        # Raw windows-1251 bytes, no label at all.
        (b'attachment; filename="' + "Накладная.xlsx".encode("cp1251") + b'"', "Накладная.xlsx"),
        # Raw UTF-8 bytes (RFC 6532 mail).
        (b'attachment; filename="' + "Фото.jpg".encode() + b'"', "Фото.jpg"),
    ],
)
def test_attachment_names_with_undeclared_or_unknown_8bit_bytes(disposition, expected):
    raw = _mixed(TEXT_PART, b"Content-Type: application/octet-stream\r\nContent-Disposition: " + disposition + b"\r\n\r\nxx")
    (attachment,) = parse_mail(raw).attachments
    assert attachment.filename == expected


def test_content_type_name_is_decoded_the_same_way():
    part = (
        b'Content-Type: application/pdf; name="=?unknown-8bit?B?'
        + base64.b64encode("Счёт.pdf".encode("koi8-r"))
        + b'?="\r\n\r\nxx'
    )
    (attachment,) = parse_mail(_mixed(TEXT_PART, part)).attachments
    assert attachment.filename == "Счёт.pdf"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # A quoted display name of unknown-8bit words (koi8-r bytes this time).
        (f'From: "=?unknown-8bit?Q?{_q("Анна Смирнова", "koi8-r")}?=" <anna@example.ru>', ("Анна Смирнова", "anna@example.ru")),
        # A name whose UTF-8 letter is split between two encoded words.
        ("From: =?utf-8?Q?=D0=9F=D1?= =?utf-8?Q?=91=D1=82=D1=80?= <petr@example.ru>", ("Пётр", "petr@example.ru")),
        # A charset label that does not exist.
        (f"From: =?x-no-such-charset?Q?{_q('Ольга')}?= <olga@example.ru>", ("Ольга", "olga@example.ru")),
        # Raw KOI8-R in a name, undeclared.
        ("From: Иван <ivan@example.ru>", ("Иван", "ivan@example.ru")),
    ],
)
def test_sender_names_with_unknown_or_undeclared_charsets(header, expected):
    raw = (
        header.encode("koi8-r")
        + b"\r\nMessage-ID: <n@x>\r\nSubject: =?unknown-8bit?B?"
        + base64.b64encode("Возврат".encode("cp1251"))
        + b"?=\r\n\r\nhi\r\n"
    )
    message = parse_mail(raw)
    assert (message.sender_name, message.address) == expected
    assert message.subject == "Возврат"


def test_cc_names_and_the_reply_to_address_come_through():
    raw = (
        b"From: a@example.com\r\nReply-To: =?unknown-8bit?Q?" + _q("Вера").encode() + b"?= <vera@home.example>\r\n"
        b"Cc: =?utf-8?B?0JHQvtGA0LjRgQ==?= <boris@example.ru>, plain@example.org\r\nMessage-ID: <cc@x>\r\n\r\nhi\r\n"
    )
    message = parse_mail(raw)
    assert message.meta["reply_to"] == "vera@home.example"
    assert message.meta["cc"] == ["boris@example.ru", "plain@example.org"]


# -- a multipart the parser cannot split (case 02's kind) ----------------------------------------


def test_multipart_without_boundary_holding_html_is_read_as_html():
    raw = (
        b"From: a@example.com\r\nMessage-ID: <nb@x>\r\nContent-Type: multipart/alternative\r\n\r\n"
        b"<html><body><p>The parcel <b>arrived</b> open.</p></body></html>\r\n"
    )
    message = parse_mail(raw)
    assert message.body == "The parcel arrived open."
    assert message.attachments == ()


@pytest.mark.parametrize("content_type", [b"multipart/mixed", b'multipart/mixed; boundary="declared-but-unused"'])
def test_multipart_whose_boundary_is_missing_or_wrong_is_split_at_the_one_it_uses(content_type):
    raw = (
        b"From: a@example.com\r\nMessage-ID: <wb@x>\r\nContent-Type: " + content_type + b"\r\n\r\n"
        b"--used\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe receipt is attached.\r\n"
        b'--used\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="receipt.pdf"\r\n\r\n%PDF-1.4\r\n'
        b"--used--\r\n"
    )
    message = parse_mail(raw)
    assert message.body == "The receipt is attached."
    assert [(a.filename, a.data) for a in message.attachments] == [("receipt.pdf", b"%PDF-1.4")]


def test_multipart_without_boundary_in_base64_windows_1251():
    text = "Посылка пришла вскрытой, не хватает одной чашки."
    raw = (
        b"From: a@example.com\r\nMessage-ID: <nb64@x>\r\nContent-Type: multipart/alternative; charset=windows-1251\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(text.encode("cp1251"))
    )
    assert parse_mail(raw).body == text


# -- the date a mail was written -----------------------------------------------------------------

RECEIVED = "Received: from mx.example.net by mx.shop.example with ESMTPS id 4Xy; Tue, 05 Nov 2024 08:41:07 +0000\r\n"
OLDER_HOP = "Received: from laptop by mx.example.net; Mon, 04 Nov 2024 01:00:00 +0000\r\n"


def dated(headers: str) -> bytes:
    return f"From: a@example.com\r\nMessage-ID: <d@x>\r\n{headers}\r\nhi\r\n".encode()


@pytest.mark.parametrize(
    ("headers", "when", "source"),
    [
        ("Date: Tue, 05 Nov 2024 11:40:00 +0300\r\n" + RECEIVED, datetime(2024, 11, 5, 8, 40, tzinfo=UTC), None),
        # Missing or unreadable: the newest Received hop (our side's clock), not an older one.
        (RECEIVED + OLDER_HOP, datetime(2024, 11, 5, 8, 41, 7, tzinfo=UTC), "received"),
        ("Date: someday soon\r\n" + RECEIVED + OLDER_HOP, datetime(2024, 11, 5, 8, 41, 7, tzinfo=UTC), "received"),
        # A clock never set, and one set a year ahead.
        ("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n" + RECEIVED, datetime(2024, 11, 5, 8, 41, 7, tzinfo=UTC), "received"),
        ("Date: Wed, 05 Nov 2025 08:40:00 +0000\r\n" + RECEIVED, datetime(2024, 11, 5, 8, 41, 7, tzinfo=UTC), "received"),
        # Other trace dates when there is no Received.
        (
            "X-Received: by 2002:a05:6000:1 with SMTP id x; Tue, 05 Nov 2024 08:41:00 -0800\r\n",
            datetime(2024, 11, 5, 16, 41, tzinfo=UTC),
            "x-received",
        ),
        ("Delivery-date: Tue, 05 Nov 2024 09:00:00 +0000\r\n", datetime(2024, 11, 5, 9, 0, tzinfo=UTC), "delivery-date"),
    ],
)
def test_the_best_date_the_mail_carries(headers, when, source):
    message = parse_mail(dated(headers), delivered_at=datetime(2024, 12, 1, tzinfo=UTC))
    assert message.sent_at == when
    assert message.meta.get("date_from") == source


def test_without_any_date_the_mailbox_time_then_arrival():
    mailbox_time = datetime(2024, 11, 5, 9, 30, tzinfo=UTC)
    message = parse_mail(dated(""), delivered_at=mailbox_time)
    assert (message.sent_at, message.meta["date_from"]) == (mailbox_time, "mailbox")
    # A mailbox placeholder is not held against a Date header that is fine.
    fine = parse_mail(dated("Date: Tue, 05 Nov 2024 11:40:00 +0300\r\n"), delivered_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert fine.sent_at == datetime(2024, 11, 5, 8, 40, tzinfo=UTC) and "date_from" not in fine.meta
    before = datetime.now(UTC)
    nothing = parse_mail(dated(""))
    assert nothing.meta["date_from"] == "arrival" and nothing.sent_at >= before
    unreadable = parse_mail(b"", delivered_at=mailbox_time)
    assert unreadable.sent_at == mailbox_time


# -- Outlook's winmail.dat (case 08's kind) ------------------------------------------------------


def tnef(*objects: tuple[int, int, bytes]) -> bytes:
    """TNEF bytes ([MS-OXTNEF] 2.1.3): signature, key, then (level, attribute id, data)
    objects, each with its length and checksum."""
    import struct

    out = struct.pack("<IH", 0x223E9F78, 1)
    for level, attribute, data in objects:
        out += struct.pack("<BII", level, attribute, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)
    return out


def tnef_mail(data: bytes, *, text: bytes | None = None, content_type: bytes = b"application/ms-tnef") -> bytes:
    parts = [] if text is None else [b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + text]
    parts.append(
        b"Content-Type: " + content_type + b'; name="winmail.dat"\r\nContent-Transfer-Encoding: base64\r\n'
        b'Content-Disposition: attachment; filename="winmail.dat"\r\n\r\n' + base64.encodebytes(data)
    )
    return _mixed(*parts)


VERSION = (1, 0x00089006, b"\x00\x00\x01\x00")
FILE = [
    (2, 0x00069002, b"\x01\x00\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00"),
    (2, 0x00018010, b"order.csv\x00"),
    (2, 0x0006800F, b"sku;qty\nA-1;3\n"),
]


def test_tnef_body_is_the_body_when_the_mail_has_none():
    message = parse_mail(tnef_mail(tnef(VERSION, (1, 0x0002800C, b"Please find the order attached.\r\n"), *FILE)))
    assert message.body == "Please find the order attached."
    assert [(a.filename, a.mime_type, a.data) for a in message.attachments] == [("order.csv", "text/csv", b"sku;qty\nA-1;3\n")]


def test_tnef_under_a_generic_type_is_unpacked_too():
    message = parse_mail(tnef_mail(tnef(VERSION, *FILE), text=b"Order attached.", content_type=b"application/octet-stream"))
    assert message.body == "Order attached."
    assert [a.filename for a in message.attachments] == ["order.csv"]


def test_a_winmail_dat_that_is_not_tnef_is_kept_as_it_came():
    message = parse_mail(tnef_mail(b"this is no TNEF at all", text=b"Hi"))
    assert [(a.filename, a.data) for a in message.attachments] == [("winmail.dat", b"this is no TNEF at all")]


# -- ids without angle brackets (case 05's kind) -------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "keys"),
    [
        (
            "In-Reply-To: 1.2@tracker.example\r\nReferences: 0.1@tracker.example 1.2@tracker.example\r\n",
            ("<1.2@tracker.example>", "<0.1@tracker.example>"),
        ),
        ("References: 0.1@tracker.example,\r\n 1.2@tracker.example\r\n", ("<0.1@tracker.example>", "<1.2@tracker.example>")),
        ("In-Reply-To: <p@x> (Ivan's message of Mon)\r\n", ("<p@x>",)),
        # RFC 822's phrase form: the bracketed id, not the address in the words.
        ("In-Reply-To: Your message of Mon, 4 Nov 2024 from ivan@example.ru <q@x>\r\n", ("<q@x>",)),
        ("In-Reply-To: Your message of Monday\r\n", ()),
    ],
)
def test_reply_keys_bracketed_or_bare(headers, keys):
    raw = f"From: a@example.com\r\nMessage-ID: 9.9@tracker.example\r\n{headers}\r\nhi\r\n".encode()
    message = parse_mail(raw)
    assert message.thread_key == "<9.9@tracker.example>"
    assert message.reply_to_keys == keys


# -- lists and groups that rewrite From (case 14's kind) -----------------------------------------

LIST = "List-Id: <help.shop.example>\r\nList-Post: <mailto:help@shop.example>\r\nPrecedence: list\r\n"


@pytest.mark.parametrize(
    ("headers", "person"),
    [
        # Mailman, from_is_list = munge_from: the person in Reply-To.
        (
            'From: "Vera Testova via Shop Help" <help@shop.example>\r\nReply-To: Vera Testova <vera@mail.example>\r\n',
            ("Vera Testova", "vera@mail.example"),
        ),
        # ... with reply_goes_to_list: Reply-To is the list, the person in Cc.
        (
            "From: Vera Testova via Shop Help <help@shop.example>\r\nReply-To: help@shop.example\r\n"
            "Cc: Vera Testova <vera@mail.example>\r\n",
            ("Vera Testova", "vera@mail.example"),
        ),
        # Google Groups, X-Original-From only.
        (
            "From: \"'Ivan Testov' via Shop Help\" <help@shop.example>\r\nX-Original-From: Ivan Testov <ivan@mailbox.example>\r\n",
            ("Ivan Testov", "ivan@mailbox.example"),
        ),
        # A list that does not rewrite: From is the person already.
        ("From: Olga <olga@post.example>\r\nReply-To: help@shop.example\r\n", ("Olga", "olga@post.example")),
    ],
)
def test_list_and_group_rewrites_give_the_person(headers, person):
    message = parse_mail(f"{headers}{LIST}Message-ID: <l@x>\r\n\r\nhi\r\n".encode())
    assert (message.sender_name, message.address) == person
    assert message.flags == frozenset()
    assert message.meta["list"]["address"] == "help@shop.example"


def test_original_sender_headers_count_only_on_list_mail():
    # Without any list header anyone could name anyone: From stays the sender.
    raw = b"From: Eve <eve@example.com>\r\nX-Original-From: Boss <boss@shop.example>\r\nMessage-ID: <e@x>\r\n\r\nhi\r\n"
    message = parse_mail(raw)
    assert (message.sender_name, message.address) == ("Eve", "eve@example.com")
    assert "list" not in message.meta and "via" not in message.meta


# -- mbox separators (case 04's kind) ------------------------------------------------------------


def test_mbox_separators_by_their_shape(tmp_path):
    mbox = tmp_path / "export.mbox"
    mbox.write_bytes(
        b"From ivan@example.ru Tue Nov  5 10:00:00 +0300 2024\n"  # zone before the year (Google Takeout)
        b"From: ivan@example.ru\nMessage-ID: <s1@x>\n\nFrom now on, please write to my new address.\n"
        b"From what I remember the order was paid.\n\n"
        b"From anna@example.ru Tue, 05 Nov 2024 12:00:00 +0000\n"  # an RFC 5322 date, no blank line needed
        b"From: anna@example.ru\nMessage-ID: <s2@x>\n\nsecond\n"
        b"From boris@example.ru Tue Nov  5 13:00 2024\n"  # no blank line before: a header must follow
        b"Message-ID: <s3@x>\nFrom: boris@example.ru\n\nthird\n"
    )
    entries = list(iter_mbox(mbox))
    assert [entry.key for entry in entries] == ["<s1@x>", "<s2@x>", "<s3@x>"]
    assert (
        parse_mail(entries[0].raw).body
        == "From now on, please write to my new address.\nFrom what I remember the order was paid."
    )
    assert [entry.delivered_at for entry in entries] == [
        datetime(2024, 11, 5, 7, 0, tzinfo=UTC),
        datetime(2024, 11, 5, 12, 0, tzinfo=UTC),
        datetime(2024, 11, 5, 13, 0, tzinfo=UTC),
    ]
    assert all(entry.problem == "" for entry in entries)


def test_an_unreadable_mail_keeps_the_sender_it_shows():
    from connectors.mail_parse import unreadable_mail

    raw = b"Subject: x\r\nFrom: =?utf-8?B?0JjQstCw0L0=?=\r\n <ivan@example.ru>\r\n\r\n\x00\x01"
    message = unreadable_mail(raw, "k-1", "the MIME structure is nested too deeply")
    assert (message.sender_name, message.address, message.flags) == ("Иван", "ivan@example.ru", {"unreadable"})
    assert message.attachments[0].data == raw
    assert unreadable_mail(b"\x00\x01 junk", "k-2", "no mail headers found").address == ""


def test_a_mail_a_list_wrapped_for_dmarc_is_the_persons_own_mail():
    # Mailman's from_is_list = wrap_message: the list's mail, the person's own as message/rfc822.
    original = (
        b"From: Vera Testova <vera@strict.example>\r\nTo: help@shop.example\r\nSubject: Broken cup\r\n"
        b"Message-ID: <orig@strict.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nOne cup arrived broken.\r\n"
    )
    raw = (
        b"From: Vera Testova via Shop Help <help@shop.example>\r\nReply-To: Vera Testova <vera@strict.example>\r\n"
        b"List-Id: <help.shop.example>\r\nList-Post: <mailto:help@shop.example>\r\nMessage-ID: <wrap@shop.example>\r\n"
        b"Subject: Broken cup\r\nContent-Type: multipart/mixed; boundary=w\r\n\r\n"
        b"--w\r\nContent-Type: message/rfc822\r\n\r\n" + original + b"\r\n--w--\r\n"
    )
    message = parse_mail(raw)
    assert (message.sender_name, message.address, message.meta["via"]) == (
        "Vera Testova",
        "vera@strict.example",
        "help@shop.example",
    )
    assert message.body == "One cup arrived broken."
    assert message.attachments == ()
