"""WhatsApp's approved message templates as the config names them, read by the config, the
window (offering them to the operator) and the WhatsApp connector (sending them).

A models-level module: it imports nothing of the store, the core, the connectors or Textual,
so every layer may use it (a connector imports only `omniconsole.models`-level modules).
Templates are approved in Meta's WhatsApp Manager; the config only names them and their
parameters (https://developers.facebook.com/docs/whatsapp/cloud-api/guides/send-message-templates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Template:
    """An approved message template as configured: `params` name its `{{1}}`, `{{2}}`...
    in the operator's words; `text` is its body with `{1}`, `{2}` where they go."""

    name: str
    language: str
    params: tuple[str, ...] = ()
    text: str = ""

    def render(self, values: Sequence[str]) -> str:
        """The text the customer will read, for our timeline."""
        text = self.text or f"[template {self.name}]"
        for number, value in enumerate(values, start=1):
            text = text.replace(f"{{{number}}}", value)
        return text


def parse_templates(raw: Any) -> list[Template]:
    """The channel's `templates` setting (a list of TOML tables); ValueError in words when it
    is malformed."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise ValueError('templates must be a list of tables such as {name = "order_update", language = "ru"}')
    templates = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"]:
            raise ValueError(f"template #{number} needs a name (the approved template's name)")
        language = item.get("language", "en_US")
        params = item.get("params", [])
        text = item.get("text", "")
        if not isinstance(language, str) or not isinstance(text, str):
            raise ValueError(f"template {item['name']!r}: language and text must be text")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise ValueError(f'template {item["name"]!r}: params must be a list of names such as ["order number"]')
        templates.append(Template(item["name"], language, tuple(params), text))
    return templates
