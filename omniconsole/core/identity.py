"""Normalising identities, so the same person is the same customer whichever channel they use.

Phones become E.164 (`+79991234567`) with `phonenumbers`, whatever their source: a number is
read as written in the configured region, then with a `+` in front (a caller id with the
country code and no `+`), and only a number no reading makes valid is kept as digits; an
extension stays part of the address (`+74951234567;ext=101`, RFC 3966). E-mail addresses are
lower-cased with the domain in IDNA (punycode) form; Telegram and VK ids are their decimal
digits; WhatsApp ids are phones.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from omniconsole.models import IdentityKind

_DIGITS = re.compile(r"\D+")


def parse_phone(raw: str, region: str = "RU") -> phonenumbers.PhoneNumber | None:
    """The valid phone number `raw` means, or None when no reading of it is valid.

    Numbers reach us written every way (a PBX's caller id `998901234567` with the country code
    but no `+`, `8 (999) 123-45-67` in the trunk-prefix form, `00998...`): `raw` is read as
    written in `region` first, then as an international number with a `+` put in front (and
    with a leading international `00` taken for `+`). Validity is `phonenumbers`' (the number
    plan of the country), not a count of digits. An extension written with the number
    (`доб. 101`, `ext. 101`, `x101`, RFC 3966 `;ext=101`) is kept on the number."""
    text = raw.strip()
    if not text:
        return None
    tries = [text]
    if text[0].isdigit():
        tries.append("+" + text)
        if text.startswith("00"):
            tries.append("+" + text[2:])
    for attempt in tries:
        try:
            number = phonenumbers.parse(attempt, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return number
    return None


def format_phone(number: phonenumbers.PhoneNumber) -> str:
    """A phone identity's address: E.164, with an extension in RFC 3966's `;ext=` form
    (`+74951234567;ext=101`), so colleagues behind one office number stay separate people."""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return f"{e164};ext={number.extension}" if number.extension else e164


def valid_phone(raw: str, region: str = "RU") -> str | None:
    """The address of a valid phone number (see `parse_phone`), or None: for input a person
    typed or a file holds, where an invalid number is a mistake to report, not an identity."""
    number = parse_phone(raw, region)
    return format_phone(number) if number is not None else None


def normalize_phone(raw: str, region: str = "RU") -> str:
    """The address of a phone identity, from any source (call events, WhatsApp, a shared
    contact, a CSV file, an operator): a valid reading (`parse_phone`) in E.164 with its
    extension; else a number that is merely possible as written in `region`, in E.164;
    else its digits (with a leading + if it had one), so it is still one stable identity."""
    number = parse_phone(raw, region)
    if number is not None:
        return format_phone(number)
    text = raw.strip()
    try:
        number = phonenumbers.parse(text, region)
        if phonenumbers.is_possible_number(number):
            return format_phone(number)
    except phonenumbers.NumberParseException:
        pass
    digits = _DIGITS.sub("", text)
    return ("+" + digits) if text.startswith("+") else digits or text


def normalize_email(raw: str) -> str:
    """Lower-case address with an IDNA (ASCII) domain: `Ivan@Пример.рф` -> `ivan@xn--e1afmkfd.xn--p1ai`."""
    text = raw.strip().strip("<>").strip()
    local, at, domain = text.rpartition("@")
    if not at:
        return text.lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass  # keep an unencodable domain as written rather than lose the message
    return f"{local.lower()}@{domain.lower()}"


@lru_cache(maxsize=65536)
def normalize_address(kind: IdentityKind | str, raw: str, region: str = "RU") -> str:
    """The canonical address of an identity of `kind` (cached: a customer writes many times
    and parsing a phone number costs ~70 µs)."""
    kind = IdentityKind(kind)
    if kind is IdentityKind.EMAIL:
        return normalize_email(raw)
    if kind in (IdentityKind.PHONE, IdentityKind.WHATSAPP):
        text = raw.strip()
        # WhatsApp's wa_id is the full international number without the plus.
        if kind is IdentityKind.WHATSAPP and text.isdigit():
            text = "+" + text
        return normalize_phone(text, region)
    return raw.strip()


# What may be an e-mail address or a phone number inside a message. The phone prefilter is
# cheap; only text that passes it goes through phonenumbers' matcher (which is not).
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# Ten digits at least, one separator at most between two: dates and order numbers rarely
# look like that, phone numbers do ("8 (999) 123-45-67" has a ") " - two - so allow two).
_PHONE_LIKE = re.compile(r"\+?\d(?:[\s().\-]{0,2}\d){9,}")
_MAX_MENTIONS = 5
_ANY_DIGIT = re.compile(r"[0-9]")


def mentioned_identities(body: str, region: str = "RU") -> list[tuple[IdentityKind, str]]:
    """Normalised e-mail addresses and valid phone numbers written in a message's text.

    They are evidence about who the sender may be ("my e-mail is ..."), used for suggestions,
    never as the sender's identities by themselves. At most a handful per message: a pasted
    address book proves nothing about its sender."""
    found: list[tuple[IdentityKind, str]] = []
    if "@" in body:
        for match in _EMAIL_IN_TEXT.finditer(body):
            text = match.group(0).strip(".")
            if "." in text.rpartition("@")[2]:
                found.append((IdentityKind.EMAIL, normalize_address(IdentityKind.EMAIL, text, region)))
    # Most messages have no digit at all and stop at the first, cheapest scan.
    if _ANY_DIGIT.search(body) and _PHONE_LIKE.search(body):
        for match in phonenumbers.PhoneNumberMatcher(body, region, leniency=phonenumbers.Leniency.VALID, max_tries=20):
            found.append((IdentityKind.PHONE, format_phone(match.number)))
    unique = list(dict.fromkeys(found))
    return unique[:_MAX_MENTIONS]


def parse_typed_identity(text: str, region: str = "RU") -> tuple[IdentityKind, str] | None:
    """An identity an operator typed on a customer's card: an e-mail address (normalised as
    `normalize_email`) or a valid phone number (E.164, a number without a country code read in
    `region`); None when it is neither. Stricter than ingest: a person typed it, so a number
    `phonenumbers` does not call valid is refused rather than kept as digits."""
    text = text.strip()
    if not text:
        return None
    if "@" in text:
        # The shape mentioned_identities finds in text: a dotted domain, no spaces or brackets.
        if not _EMAIL_IN_TEXT.fullmatch(text):
            return None
        return IdentityKind.EMAIL, normalize_address(IdentityKind.EMAIL, text, region)
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return IdentityKind.PHONE, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_PHONE_TYPED = re.compile(r"\+?[\d\s().\-]+")
#: Fewer digits than this match too many numbers to be a search for one.
MIN_PHONE_DIGITS = 4


def phone_search_digits(text: str, region: str = "RU") -> tuple[str, ...]:
    """Digit runs to look for inside stored phone addresses (E.164, `+` dropped) when `text`
    is a phone number as people dictate it, whole or in part; () when `text` is not one.

    A whole number is read as identities are (`valid_phone` in `region`): `8 (916) 642-38-68`,
    `89166423868` and `9166423868` all give `79166423868`. A part (`916 642`, `6423868`)
    is matched by its digits; one typed with the region's trunk prefix (`8 916 642` in Russia)
    also without it, since stored numbers carry the country code instead."""
    text = text.strip()
    if not _PHONE_TYPED.fullmatch(text):
        return ()
    digits = _DIGITS.sub("", text)
    if len(digits) < MIN_PHONE_DIGITS:
        return ()
    found: list[str] = []
    whole = valid_phone(text, region)
    if whole:
        found.append(_DIGITS.sub("", whole.split(";", 1)[0]))
    found.append(digits)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper())
    trunk = metadata.national_prefix if metadata is not None else None
    if trunk and not text.startswith("+") and digits.startswith(trunk) and len(digits) - len(trunk) >= MIN_PHONE_DIGITS:
        found.append(digits[len(trunk) :])
    return tuple(dict.fromkeys(found))
