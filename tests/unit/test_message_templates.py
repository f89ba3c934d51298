"""WhatsApp templates as the config names them (omniconsole/message_templates.py)."""

from __future__ import annotations

import pytest

from omniconsole.message_templates import Template, parse_templates


def test_templates_are_read_with_their_defaults() -> None:
    parsed = parse_templates(
        [
            {"name": "order_update", "language": "ru", "params": ["order number", "date"], "text": "Заказ {1} будет {2}"},
            {"name": "hello_again"},
        ]
    )
    assert parsed == [
        Template("order_update", "ru", ("order number", "date"), "Заказ {1} будет {2}"),
        Template("hello_again", "en_US", (), ""),
    ]
    assert parsed[0].render(["4711", "в пятницу"]) == "Заказ 4711 будет в пятницу"
    assert parsed[1].render([]) == "[template hello_again]"
    assert parse_templates(None) == [] and parse_templates("") == []


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"name": "x"}, "must be a list"),
        ([{"language": "ru"}], "template #1 needs a name"),
        ([{"name": "x", "language": 5}], "language and text must be text"),
        ([{"name": "x", "params": "order"}], "params must be a list"),
    ],
)
def test_a_malformed_setting_is_refused_in_words(raw, words) -> None:
    with pytest.raises(ValueError, match=words):
        parse_templates(raw)
