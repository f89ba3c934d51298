"""Channel connectors: one module per channel kind, all speaking the contract in `base.py`.

Connector classes are looked up by their config `kind` and imported only when a channel of
that kind is configured, so a shop without e-mail never imports the IMAP client.
"""

from __future__ import annotations

import importlib

from connectors.base import Connector

_CONNECTORS: dict[str, str] = {
    "demo": "connectors.demo:DemoConnector",
    "telegram": "connectors.telegram:TelegramConnector",
    "email": "connectors.email:EmailConnector",
    "vk": "connectors.vk:VkConnector",
    "whatsapp": "connectors.whatsapp:WhatsAppConnector",
    "webchat": "connectors.webchat:WebChatConnector",
    "api": "connectors.api:ApiConnector",
    "telephony": "connectors.telephony:TelephonyConnector",
    "sms": "connectors.sms:SmsConnector",
}


def connector_kinds() -> list[str]:
    """Every channel kind the config may name."""
    return sorted(_CONNECTORS)


def connector_class(kind: str) -> type[Connector]:
    """The connector class for a channel kind; KeyError for an unknown kind."""
    module_name, _, class_name = _CONNECTORS[kind].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
