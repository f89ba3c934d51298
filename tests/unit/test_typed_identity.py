"""An identity an operator types on a customer's card (core/identity.parse_typed_identity)."""

from __future__ import annotations

import pytest

from omniconsole.core.identity import parse_typed_identity
from omniconsole.models import IdentityKind


@pytest.mark.parametrize(
    ("typed", "region", "expected"),
    [
        ("8 (912) 000-11-22", "RU", (IdentityKind.PHONE, "+79120001122")),
        ("+44 20 7946 0958", "RU", (IdentityKind.PHONE, "+442079460958")),
        ("020 7946 0958", "GB", (IdentityKind.PHONE, "+442079460958")),
        ("  Ivan@Пример.рф ", "RU", (IdentityKind.EMAIL, "ivan@xn--e1afmkfd.xn--p1ai")),
        ("IVAN@example.com", "RU", (IdentityKind.EMAIL, "ivan@example.com")),
    ],
)
def test_phones_and_e_mail_addresses_are_normalised(typed, region, expected) -> None:
    assert parse_typed_identity(typed, region) == expected


@pytest.mark.parametrize(
    "typed",
    ["12-34", "", "   ", "ivan@localhost", "@example.com", "ivan @example.com", "not a number", "+7 999", "[@click=app.quit]"],
)
def test_what_is_neither_is_refused(typed) -> None:
    assert parse_typed_identity(typed) is None
