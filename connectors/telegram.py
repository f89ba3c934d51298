"""The Telegram channel: one bot, spoken to through python-telegram-bot's `Bot`.

Receiving is our own `getUpdates` loop rather than PTB's `Updater`: the Updater advances the
update offset in memory as soon as updates are fetched, so a crash would lose them. Here a
poll's messages and the offset that confirms them go to `sink.deliver` together (one
transaction in the core), and only after that returns does the next poll pass the new offset,
which is what tells Telegram to drop the covered updates. A crash at any point replays
unconfirmed updates; the core stores `(channel, external_id)` once.

External ids are `"<chat id>:<message id>"` because Telegram numbers messages per chat.

An answer from the library carries Telegram's HTML formatting in `meta["formatted"]`
(`parse_mode` "HTML"); it is sent instead of the plain body, cut by `connectors.text.split_html`
so no tag breaks, and sent as plain text when Telegram refuses its entities.

(A little past 600 lines: the receive loop, one reader per message kind and sending belong
together; forwards and entities are read in `connectors/telegram_content.py`.)

(Past 600 lines since it draws buttons and takes their presses, issue #17; the content
readers already live in telegram_content.py, the sending plan could follow.)
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from telegram import (
    Bot,
    Contact,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReactionTypeEmoji,
    ReplyParameters,
    Update,
    User,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from connectors.base import (
    N_,
    ChannelContext,
    Connector,
    ConnectorError,
    InboundAttachment,
    InboundMessage,
    InboundSink,
    OutboundMessage,
    PermanentError,
    SendResult,
    TransientError,
    Words,
    raise_if_cancelled,
)
from connectors.payload import REACTION, as_dict, as_int, deliver_isolated, describe, epoch_time, file_suffix, unreadable
from connectors.telegram_content import display_name, forward_origin, with_links
from connectors.text import html_to_text, split_html, utf16_len
from connectors.text import split_text as _split_text
from omniconsole.models import IdentityKind

#: Telegram's limits, counted in UTF-16 code units as the Bot API counts them.
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
#: The cloud Bot API sends photos up to 10 MB; larger images go as documents.
PHOTO_UPLOAD_LIMIT = 10 * 1024 * 1024
TOO_LARGE = "not downloaded: too large"

_DEFAULT_BASE_URL = "https://api.telegram.org/bot"
_DEFAULT_BASE_FILE_URL = "https://api.telegram.org/file/bot"
_PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
_PRIVATE_UPDATES = ["message", "edited_message", "message_reaction", "callback_query"]
_GROUP_UPDATES = ["channel_post", "edited_channel_post"]
_MESSAGE_UPDATES = {"message", "edited_message", "channel_post", "edited_channel_post"}
# Attachments of one delivery are held in memory until the core stores them: a poll of 100
# large files is handed over in several deliveries, each with the offset it covers.
_DELIVERY_BYTES = 64 * 1024 * 1024
_START = re.compile(r"^/start(?:@\w+)?(?:\s+(?P<payload>.*))?$", re.DOTALL)
_DEEP_LINK_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Seconds the getUpdates answer may take beyond the long poll's own timeout.
_READ_TIMEOUT = 10


class TelegramConnector(Connector):
    """A Telegram bot: private chats in (groups and channels when `groups = true`), replies out.

    Settings: `token` (from `token_env`), `base_url` and `base_file_url` (a self-hosted Bot API
    server), `local_mode` (that server runs with --local), `proxy`, `max_file_mb` (default 20),
    `groups` (default false), `poll_timeout` (long-poll seconds, default 25).
    """

    kind = "telegram"
    identity_kind = IdentityKind.TELEGRAM
    draws_buttons = True  # an inline keyboard; a press is a callback_query
    needs_customer_first = "a Telegram bot can only write to someone who has started a chat with it (Telegram Bot API)"

    def __init__(self, context: ChannelContext):
        super().__init__(context)
        settings = context.settings
        self.token: str = str(settings.get("token") or "")
        self.base_url: str = str(settings.get("base_url") or _DEFAULT_BASE_URL)
        self.base_file_url: str = str(settings.get("base_file_url") or _DEFAULT_BASE_FILE_URL)
        self.local_mode = bool(settings.get("local_mode", False))
        self.proxy: str | None = settings.get("proxy") or None
        self.groups = bool(settings.get("groups", False))
        self._settings_problem = ""
        self.max_file_bytes = 20 * 1024 * 1024
        self.poll_timeout = 25
        try:
            self.max_file_bytes = int(float(settings.get("max_file_mb", 20)) * 1024 * 1024)
            self.poll_timeout = max(0, round(float(settings.get("poll_timeout", 25))))
        except (TypeError, ValueError):
            self._settings_problem = "max_file_mb and poll_timeout must be numbers"
        if not self.token:
            self._settings_problem = (
                "no bot token: set token_env to the name of an environment variable holding the token from @BotFather"
            )
        self._bot: Bot | None = None
        self._bot_lock = asyncio.Lock()
        # Message ids already posted for an outbound message whose send failed part-way, so a
        # retry in this process continues where it stopped instead of repeating earlier parts.
        self._partial_sends: dict[int, list[int]] = {}
        # Messages whose HTML formatting Telegram refused: they go (and are retried) as plain text.
        self._plain_fallback: set[int] = set()

    # -- lifecycle -------------------------------------------------------------------------

    async def _ready_bot(self) -> Bot:
        """The initialised Bot (getMe done), created on first use; errors in words."""
        if self._settings_problem:
            raise PermanentError(self._settings_problem)
        async with self._bot_lock:
            if self._bot is None:
                self._bot = Bot(
                    self.token,
                    base_url=self.base_url,
                    base_file_url=self.base_file_url,
                    local_mode=self.local_mode,
                    request=HTTPXRequest(proxy=self.proxy, media_write_timeout=60.0),
                    # The long poll adds its own timeout to this read timeout.
                    get_updates_request=HTTPXRequest(connection_pool_size=1, proxy=self.proxy),
                )
            try:
                await self._bot.initialize()
            except TelegramError as exc:
                raise self._error(exc, "connecting to Telegram") from exc
        return self._bot

    async def check(self) -> str:
        """getMe: "bot @name" when the token works, else the reason as a ConnectorError."""
        bot = await self._ready_bot()
        try:
            me = await bot.get_me()
        except TelegramError as exc:
            raise self._error(exc, "checking the bot") from exc
        return Words(N_("bot @{name}"), name=me.username)

    async def close(self) -> None:
        """Shut the Bot down (closes its HTTP connections)."""
        if self._bot is not None:
            bot, self._bot = self._bot, None
            await bot.shutdown()

    # -- receiving -------------------------------------------------------------------------

    async def run(self, sink: InboundSink) -> None:
        """Long-poll getUpdates forever, delivering each poll with the offset that confirms it."""
        bot = await self._ready_bot()
        # Always resume from the committed cursor, never from memory: after a failed delivery
        # the offset we last asked for may cover updates the core did not store.
        offset = int(sink.cursor) if sink.cursor else None
        allowed = _PRIVATE_UPDATES + (_GROUP_UPDATES if self.groups else [])
        announced = False
        while True:
            raise_if_cancelled()
            # The first poll does not wait, so the channel shows as up as soon as getUpdates
            # is known to work (a webhook or a second poller would fail it).
            timeout = self.poll_timeout if announced else 0  # whole seconds, as the Bot API says
            updates: Sequence[Update | dict[str, Any]]
            try:
                updates = await bot.get_updates(offset=offset, timeout=timeout, allowed_updates=allowed)
            except TelegramError as exc:
                raise self._error(exc, "receiving updates") from exc
            except Exception as exc:
                # python-telegram-bot parses a whole poll or raises: take the same updates raw
                # and parse each on its own, so one it cannot read does not stop the others.
                self.log.warning("telegram: a poll could not be parsed (%s); reading its updates one by one", describe(exc))
                updates = await self._raw_updates(bot, offset, allowed)
            if not announced:
                sink.connected(f"bot @{bot.username}")
                announced = True
            if updates:
                offset = await self._deliver(updates, sink)

    async def _raw_updates(self, bot: Bot, offset: int | None, allowed: list[str]) -> list[dict[str, Any]]:
        """getUpdates answered as JSON objects (no parsing), without waiting."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PTBUserWarning)  # "use Bot.get_updates": on purpose
                raw = await bot.do_api_request(
                    "getUpdates",
                    api_kwargs={"offset": offset, "timeout": 0, "allowed_updates": allowed},
                    read_timeout=_READ_TIMEOUT,
                )
        except TelegramError as exc:
            raise self._error(exc, "receiving updates") from exc
        if not isinstance(raw, list):
            return []
        return [item for item in raw if isinstance(item, dict) and as_int(item.get("update_id")) is not None]

    async def _deliver(self, updates: Sequence[Update | dict[str, Any]], sink: InboundSink) -> int:
        """Convert and deliver one poll's raw updates; returns the next offset.

        Every update, ignored ones included, is covered by a delivered cursor, so a poll of only
        group posts still moves the offset on. An update that cannot be parsed or read is kept
        as unreadable (its raw JSON and the reason), never a stall of the channel."""
        batch: list[InboundMessage] = []
        raws: dict[str, Any] = {}
        held_bytes = 0
        bot = self._bot
        for number, item in enumerate(updates, start=1):
            raw = item if isinstance(item, dict) else None
            try:
                update = Update.de_json(raw, bot) if raw is not None else item
                message = await self._inbound(update)
            except ConnectorError:
                raise  # a download that may pass: nothing is confirmed, the poll comes again
            except Exception as exc:
                raw = raw if raw is not None else item.to_dict()
                message = self._unreadable(raw, exc)
            if message is not None:
                batch.append(message)
                raws[message.external_id] = raw if raw is not None else item
                held_bytes += sum(len(a.data) for a in message.attachments if a.data is not None)
            if held_bytes >= _DELIVERY_BYTES or number == len(updates):
                await deliver_isolated(
                    sink, batch, str(_update_id(item) + 1), raw_of=lambda m: _raw(raws.get(m.external_id)), log=self.log
                )
                await self._answer_presses(bot, batch)
                batch, held_bytes = [], 0
        return _update_id(updates[-1]) + 1

    def _unreadable(self, raw: dict[str, Any], exc: Exception) -> InboundMessage | None:
        """An update nobody could read, kept as raw JSON under its sender (None when it names
        no message and no sender: then only the log says so)."""
        kind = next((key for key in raw if key != "update_id"), "update")
        body = as_dict(raw.get(kind))
        chat, sender = as_dict(body.get("chat")), as_dict(body.get("from") or body.get("user"))
        chat_id, sender_id = as_int(chat.get("id")), as_int(sender.get("id"))
        self.log.warning("telegram: update %s (%s) cannot be read: %s", raw.get("update_id"), kind, describe(exc))
        if chat_id is None and sender_id is None:
            return None
        if chat.get("type") not in (None, "private") and not self.groups:
            return None
        message_id = as_int(body.get("message_id")) if kind in _MESSAGE_UPDATES else None
        # A message keeps its own id (a redelivery is recognised); anything else (a reaction
        # names another message's id) is known by its update.
        external_id = (
            f"{chat_id}:{message_id}" if chat_id is not None and message_id is not None else f"update:{raw.get('update_id')}"
        )
        stand_in = InboundMessage(
            external_id=external_id,
            identity_kind=IdentityKind.TELEGRAM,
            address=str(sender_id if sender_id is not None else chat_id),
            body="",
            sent_at=epoch_time(body.get("date")) or datetime.now(UTC),
            sender_name=" ".join(str(sender.get(k) or "") for k in ("first_name", "last_name")).strip(),
            meta={"chat_id": chat_id} if chat_id is not None else {},
        )
        return unreadable(stand_in, raw, f"omniconsole could not read this Telegram {kind.replace('_', ' ')}: {describe(exc)}")

    async def _answer_presses(self, bot: Bot, batch: Sequence[InboundMessage]) -> None:
        """Tell Telegram each button press of a stored batch was received, so the customer's
        app stops its spinner (answerCallbackQuery; it may fail once the query is 15 minutes
        old, which loses nothing: the press is stored)."""
        for message in batch:
            query_id = message.meta.get("callback_query_id") if "button" in message.flags else None
            if not query_id:
                continue
            try:
                await bot.answer_callback_query(str(query_id))
            except TelegramError as exc:
                self.log.info(
                    "telegram: a button press could not be acknowledged: %s", exc.message.replace(self.token, "<token>")
                )

    def _button_press(self, update: Update) -> InboundMessage | None:
        """A `callback_query` (https://core.telegram.org/bots/api#callbackquery): the customer
        pressed an inline button under our message. It becomes a "button" message whose meta
        names the button's id and whose body is the button's title."""
        query = update.callback_query
        message = query.message
        if query.data is None or message is None:
            return None  # a game's button, or a message too old to know: nothing to act on
        chat = message.chat
        if chat.type != "private" and not self.groups:
            return None
        title = query.data
        markup = getattr(message, "reply_markup", None)
        for row in markup.inline_keyboard if markup else ():
            for button in row:
                if button.callback_data == query.data:
                    title = button.text
        return InboundMessage(
            external_id=f"callback:{query.id}",
            identity_kind=IdentityKind.TELEGRAM,
            address=str(query.from_user.id),
            body=title,
            sent_at=datetime.now(UTC),
            sender_name=display_name(query.from_user),
            reply_to_external_id=f"{chat.id}:{message.message_id}",
            flags=frozenset({"button"}),
            meta={"chat_id": chat.id, "button": query.data, "callback_query_id": query.id, "kind": "button"},
        )

    async def _inbound(self, update: Update) -> InboundMessage | None:
        """The InboundMessage for one update, or None for updates we do not take."""
        if update.message_reaction is not None:
            return self._reaction(update)
        if update.callback_query is not None:
            return self._button_press(update)
        message = update.message or update.edited_message
        if message is None and self.groups:
            message = update.channel_post or update.edited_channel_post
        if message is None:
            return None
        if message.chat.type != "private" and not self.groups:
            return None
        edited = update.edited_message is not None or update.edited_channel_post is not None
        content = await self._content(message)
        if content is None:
            return None  # a service message (pinned, timer changed...): nothing a customer said

        sender = message.from_user
        chat_id = message.chat.id
        meta: dict[str, Any] = {"chat_id": chat_id, "message_id": message.message_id, "kind": content.kind}
        if message.chat.type != "private":
            meta["chat_type"] = str(message.chat.type)
            meta["chat_title"] = message.chat.title or ""
        if sender is not None:
            address, name = str(sender.id), display_name(sender)
            if sender.username:
                meta["username"] = sender.username
        else:  # a channel post, or an anonymous group admin: the chat speaks
            speaker = message.sender_chat or message.chat
            address, name = str(speaker.id), speaker.title or speaker.username or str(speaker.id)
        meta.update(content.meta)

        origin_words = forward_origin(message)
        if origin_words:
            meta["forwarded_from"] = origin_words
        reply_to = None
        if message.reply_to_message is not None:
            reply_to = f"{chat_id}:{message.reply_to_message.message_id}"
        flags: frozenset[str] = frozenset()
        origin = None
        body = content.body
        if origin_words:
            # Someone else's words the customer passed on: shown as such, with where they came from.
            body = f"Forwarded from {origin_words}:\n" + "\n".join("> " + line if line else ">" for line in body.split("\n"))
        start = _START.match(message.text or "") if content.kind == "text" and not edited and not origin_words else None
        if start is not None:
            # A deep link carries at most 64 of [A-Za-z0-9_-]; anything else after /start was
            # typed by the customer and stays their message.
            payload = (start.group("payload") or "").strip()
            if not payload or _DEEP_LINK_PAYLOAD.fullmatch(payload):
                flags = frozenset({"start"})
                origin = payload or None
                body = ""
        return InboundMessage(
            external_id=f"{chat_id}:{message.message_id}",
            identity_kind=IdentityKind.TELEGRAM,
            address=address,
            body=body,
            sent_at=_utc(message.date),
            sender_name=name,
            reply_to_external_id=reply_to,
            attachments=content.attachments,
            extra_identities=content.identities(sender),
            edited_at=_utc(message.edit_date) if edited and message.edit_date else None,
            # edit_date has one-second resolution; update_id orders edits within a second.
            edit_seq=update.update_id if edited else None,
            origin=origin,
            flags=flags,
            meta=meta,
        )

    def _reaction(self, update: Update) -> InboundMessage | None:
        """A `message_reaction` update (https://core.telegram.org/bots/api#messagereactionupdated)
        as a reaction record on the message it is on: the emoji now set ("" when taken off)."""
        reaction = update.message_reaction
        chat = reaction.chat
        if chat.type != "private" and not self.groups:
            return None
        person = reaction.user
        if person is not None:
            address, name = str(person.id), display_name(person)
        else:  # an anonymous admin or a channel reacting
            speaker = reaction.actor_chat or chat
            address, name = str(speaker.id), speaker.title or str(speaker.id)
        emoji = " ".join(
            r.emoji if isinstance(r, ReactionTypeEmoji) else "(custom emoji)" if r.type == "custom_emoji" else "(paid star)"
            for r in reaction.new_reaction
        )
        target = f"{chat.id}:{reaction.message_id}"
        return InboundMessage(
            external_id=f"{target}:reaction:{address}:{update.update_id}",
            identity_kind=IdentityKind.TELEGRAM,
            address=address,
            body=f"Reacted {emoji}" if emoji else "Removed a reaction",
            sent_at=_utc(reaction.date),
            sender_name=name,
            reply_to_external_id=target,
            flags=frozenset({REACTION}),
            meta={"chat_id": chat.id, "emoji": emoji, "kind": "reaction"},
        )

    async def _content(self, message: Message) -> _Content | None:
        """What the customer sent: readable body, files, and the kind of message."""
        caption = with_links(message.caption, message.parse_caption_entities()) if message.caption else ""
        if message.text is not None:
            return _Content("text", with_links(message.text, message.parse_entities()))
        if message.photo:
            largest = message.photo[-1]
            name = f"photo_{largest.file_unique_id}.jpg"
            return _Content("photo", caption, (await self._download(largest, name, "image/jpeg"),))
        if message.sticker is not None:
            sticker = message.sticker
            suffix, mime = (
                (".tgs", "application/x-tgsticker")
                if sticker.is_animated
                else (".webm", "video/webm")
                if sticker.is_video
                else (".webp", "image/webp")
            )
            attachment = await self._download(sticker, f"sticker_{sticker.file_unique_id}{suffix}", mime)
            body = f"Sticker {sticker.emoji}" if sticker.emoji else "Sticker"
            return _Content("sticker", body, (attachment,), {"emoji": sticker.emoji or ""})
        media = (
            ("animation", message.animation, ".mp4", "video/mp4"),
            ("document", message.document, "", "application/octet-stream"),
            ("voice", message.voice, ".ogg", "audio/ogg"),
            ("audio", message.audio, ".mp3", "audio/mpeg"),
            ("video", message.video, ".mp4", "video/mp4"),
            ("video_note", message.video_note, ".mp4", "video/mp4"),
        )
        for kind, item, suffix, default_mime in media:
            if item is None:
                continue
            mime = getattr(item, "mime_type", None) or default_mime
            name = getattr(item, "file_name", None) or f"{kind}_{item.file_unique_id}{suffix or _suffix(mime)}"
            return _Content(kind, caption, (await self._download(item, name, mime),))
        if message.venue is not None:
            venue = message.venue
            where = f"{_coordinate(venue.location.latitude)}, {_coordinate(venue.location.longitude)}"
            body = f"Venue: {venue.title}, {venue.address} ({where})"
            meta = {"latitude": venue.location.latitude, "longitude": venue.location.longitude}
            return _Content("venue", body, meta=meta)
        if message.location is not None:
            location = message.location
            body = f"Location: {_coordinate(location.latitude)}, {_coordinate(location.longitude)}"
            meta = {"latitude": location.latitude, "longitude": location.longitude}
            if location.live_period:
                meta["live"] = True
            return _Content("location", body, meta=meta)
        if message.contact is not None:
            contact = message.contact
            name = " ".join(part for part in (contact.first_name, contact.last_name) if part)
            body = f"Contact: {name}, {contact.phone_number}" if name else f"Contact: {contact.phone_number}"
            meta = {"contact_phone": contact.phone_number, "contact_user_id": contact.user_id}
            return _Content("contact", body, meta=meta, contact=contact)
        if message.dice is not None:
            return _Content("dice", f"Dice {message.dice.emoji} {message.dice.value}")
        if message.poll is not None:
            options = ", ".join(option.text for option in message.poll.options)
            return _Content("poll", f"Poll: {message.poll.question}" + (f" ({options})" if options else ""))
        if message.web_app_data is not None:  # a Web App's keyboard button sent data
            data = message.web_app_data
            return _Content("web_app_data", f"Web app ({data.button_text}) sent: {data.data}")
        if message.users_shared is not None:  # the customer picked users with a request button
            people = ", ".join(
                " ".join(p for p in (u.first_name, u.last_name) if p) or (f"@{u.username}" if u.username else f"user {u.user_id}")
                for u in message.users_shared.users
            )
            return _Content(
                "users_shared", f"Shared users: {people}", meta={"user_ids": [u.user_id for u in message.users_shared.users]}
            )
        if message.chat_shared is not None:
            shared = message.chat_shared
            return _Content(
                "chat_shared",
                f"Shared a chat: {shared.title or shared.username or shared.chat_id}",
                meta={"shared_chat_id": shared.chat_id},
            )
        if message.successful_payment is not None:
            paid = message.successful_payment
            return _Content(
                "successful_payment",
                f"Payment received: {paid.total_amount} {paid.currency} (in the currency's smallest units), invoice {paid.invoice_payload}",
            )
        for kind in ("game", "story", "invoice", "paid_media", "giveaway", "checklist"):
            if getattr(message, kind, None) is not None:
                return _Content(kind, f"({kind.replace('_', ' ')}: omniconsole cannot show this kind of message)")
        return None

    async def _download(self, item: Any, filename: str, mime_type: str) -> InboundAttachment:
        """Fetch one file unless it is over the size cap; a refusal becomes a note, a network
        fault a TransientError (the poll is retried, nothing is confirmed)."""
        declared = item.file_size
        if declared is not None and declared > self.max_file_bytes:
            return InboundAttachment(filename, mime_type, None, declared, TOO_LARGE)
        bot = await self._ready_bot()
        try:
            file = await bot.get_file(item.file_id)
            size = file.file_size if file.file_size is not None else declared
            if size is not None and size > self.max_file_bytes:
                return InboundAttachment(filename, mime_type, None, size, TOO_LARGE)
            data = bytes(await file.download_as_bytearray())
        except BadRequest as exc:
            # The cloud Bot API refuses getFile over 20 MB whatever our own cap says.
            if "too big" in exc.message.lower():
                return InboundAttachment(filename, mime_type, None, declared, TOO_LARGE)
            return InboundAttachment(filename, mime_type, None, declared, f"not downloaded: Telegram said {exc.message!r}")
        except (InvalidToken, Forbidden, RetryAfter, NetworkError, TimedOut) as exc:
            raise self._error(exc, f"downloading {filename}") from exc
        except TelegramError as exc:
            return InboundAttachment(filename, mime_type, None, declared, f"not downloaded: {exc.message}")
        if len(data) > self.max_file_bytes:
            return InboundAttachment(filename, mime_type, None, len(data), TOO_LARGE)
        return InboundAttachment(filename, mime_type, data, len(data))

    # -- sending ---------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send text (split at 4,096), then files; photos as photos, the rest as documents."""
        bot = await self._ready_bot()
        chat_id = _chat_id(message)
        steps = _send_plan(message, formatted=message.id not in self._plain_fallback)
        if not steps:
            raise PermanentError("nothing to send: the message has no text and no files")
        sent = self._partial_sends.setdefault(message.id, [])
        reply = _reply_parameters(message.reply_to_external_id, chat_id)
        keyboard = (
            InlineKeyboardMarkup([[InlineKeyboardButton(b.title, callback_data=b.id)] for b in message.buttons])
            if message.buttons
            else None
        )
        try:
            while len(sent) < len(steps):
                step = steps[len(sent)]
                # Only the first message of the answer quotes the customer's message; the
                # buttons go under the last.
                replying = reply if not sent else None
                markup = keyboard if len(sent) + 1 == len(steps) else None
                try:
                    posted = await self._post(bot, chat_id, step, replying, markup)
                except BadRequest as exc:
                    if not (step.html and "parse entities" in exc.message.lower()):
                        raise
                    # Telegram refused the formatting: the answer still goes, as plain text
                    # (from the start when nothing went yet, else this part without its tags).
                    self.log.warning("telegram message %s: formatting refused (%s); sending plain text", message.id, exc.message)
                    if not sent:
                        self._plain_fallback.add(message.id)
                        steps = _send_plan(message, formatted=False)
                        continue
                    posted = await self._post(bot, chat_id, _SendStep(html_to_text(step.text), step.path), replying, markup)
                sent.append(posted.message_id)
        except TelegramError as exc:
            error = self._error(exc, "sending")
            if isinstance(error, PermanentError):
                self._partial_sends.pop(message.id, None)
                self._plain_fallback.discard(message.id)
            raise error from exc
        self._partial_sends.pop(message.id, None)
        self._plain_fallback.discard(message.id)
        if len(sent) > 1:
            self.log.debug("telegram message %s went out as %s", message.id, sent)
        return SendResult(external_id=f"{chat_id}:{sent[0]}")

    async def _post(
        self,
        bot: Bot,
        chat_id: int | str,
        step: _SendStep,
        reply: ReplyParameters | None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> Message:
        mode = {"parse_mode": "HTML"} if step.html else {}
        if step.path is None:
            return await bot.send_message(chat_id, step.text, reply_parameters=reply, reply_markup=keyboard, **mode)
        try:
            data = await asyncio.to_thread(step.path.read_bytes)
        except OSError as exc:
            raise PermanentError(f"cannot read the attachment {step.path.name}: {exc.strerror or exc}") from exc
        caption = step.text or None
        if step.path.suffix.lower() in _PHOTO_SUFFIXES and len(data) <= PHOTO_UPLOAD_LIMIT:
            return await bot.send_photo(
                chat_id, data, caption=caption, filename=step.path.name, reply_parameters=reply, reply_markup=keyboard, **mode
            )
        return await bot.send_document(
            chat_id, data, caption=caption, filename=step.path.name, reply_parameters=reply, reply_markup=keyboard, **mode
        )

    # -- errors ----------------------------------------------------------------------------

    def _error(self, exc: TelegramError, doing: str) -> ConnectorError:
        """PTB's exception as our taxonomy, with a reason an operator can act on."""
        # PTB puts the token into some messages; it must not reach logs or the status bar.
        said = exc.message.replace(self.token, "<token>")
        # A proxy's HTML error page is not news to an operator: keep "Bad Gateway (502)".
        said = said.split(". Parsing the server response", 1)[0]
        if isinstance(exc, InvalidToken):
            return PermanentError(
                "Telegram rejected the bot token (Unauthorized); check the environment variable named by token_env"
            )
        if isinstance(exc, RetryAfter):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            return TransientError(f"Telegram asks to slow down while {doing}: retry in {seconds:g} s", retry_after=seconds)
        if isinstance(exc, Forbidden):
            lowered = said.lower()
            if "blocked" in lowered:
                return PermanentError("the customer blocked the bot")
            if "deactivated" in lowered:
                return PermanentError("the customer's Telegram account was deleted")
            if "initiate conversation" in lowered:
                return PermanentError("the customer has not started a chat with the bot yet")
            if "kicked" in lowered or "not a member" in lowered:
                return PermanentError("the bot is no longer a member of this chat")
            return PermanentError(f"Telegram refused: {said}")
        if isinstance(exc, ChatMigrated):
            return PermanentError(f"the group became a supergroup with chat id {exc.new_chat_id}")
        if isinstance(exc, BadRequest):  # before NetworkError: PTB makes it a subclass
            if doing == "sending":
                return PermanentError(f"Telegram refused the message: {said}")
            return PermanentError(f"Telegram rejected the request while {doing}: {said}")
        if isinstance(exc, TimedOut):
            return TransientError(f"Telegram did not answer in time while {doing}")
        if isinstance(exc, NetworkError):
            return TransientError(f"the Bot API at {self.base_url} is unavailable while {doing}: {said}")
        if isinstance(exc, Conflict):
            if "webhook" in said.lower():
                return PermanentError(f"the bot has a webhook set, so it cannot poll: {said}")
            return TransientError("another program is receiving this bot's updates; run only one omniconsole core per bot")
        return TransientError(f"Telegram failed while {doing}: {said}")


# -- helpers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Content:
    """A message's content as we keep it."""

    kind: str
    body: str
    attachments: tuple[InboundAttachment, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)
    contact: Contact | None = None

    def identities(self, sender: User | None) -> tuple[tuple[IdentityKind, str], ...]:
        """The shared phone as another identity of the sender: their own contact, or one that
        names no Telegram user. A contact of another Telegram user is a different person."""
        if self.contact is None or sender is None or not self.contact.phone_number:
            return ()
        if self.contact.user_id not in (None, sender.id):
            return ()
        return ((IdentityKind.PHONE, self.contact.phone_number),)


@dataclass(frozen=True, slots=True)
class _SendStep:
    """One Bot API message of an outbound message: a text part, or a file with its caption."""

    text: str
    path: Path | None = None
    html: bool = False  # `text` is in Telegram's HTML formatting (parse_mode=HTML)


def _send_plan(message: OutboundMessage, *, formatted: bool = True) -> list[_SendStep]:
    """The Telegram messages an outbound message becomes, in order: the text (as the first
    file's caption when it fits), then the files. With `formatted` and an answer rendered in
    Telegram's HTML (meta "formatted" with "parse_mode": "HTML", omniconsole/answers/render.py),
    that text goes instead of the plain body, cut where no tag is broken."""
    files = list(message.attachments)
    meta = message.meta or {}
    markup = meta.get("formatted")
    if formatted and meta.get("parse_mode") == "HTML" and isinstance(markup, str) and html_to_text(markup).strip():
        shown = html_to_text(markup)
        if files and utf16_len(shown) <= CAPTION_LIMIT:
            return [_SendStep(markup, files[0], True)] + [_SendStep("", path) for path in files[1:]]
        return [_SendStep(part, html=True) for part in split_html(markup, TEXT_LIMIT)] + [_SendStep("", path) for path in files]
    body = message.body or ""
    if files and body.strip() and utf16_len(body) <= CAPTION_LIMIT:
        return [_SendStep(body, files[0])] + [_SendStep("", path) for path in files[1:]]
    return [_SendStep(part) for part in split_text(body)] + [_SendStep("", path) for path in files]


def _chat_id(message: OutboundMessage) -> int | str:
    chat_id = message.meta.get("chat_id") if message.meta else None
    if chat_id is None:
        chat_id = message.address
    try:
        return int(chat_id)
    except (TypeError, ValueError):
        raise PermanentError(f"{chat_id!r} is not a Telegram chat id") from None


def _reply_parameters(external_id: str | None, chat_id: int | str) -> ReplyParameters | None:
    """Quote the customer's message; still send if it was deleted meanwhile."""
    if not external_id:
        return None
    reply_chat, _, message_id = external_id.rpartition(":")
    if not message_id.isdigit():
        return None
    other_chat = int(reply_chat) if reply_chat.lstrip("-").isdigit() and int(reply_chat) != chat_id else None
    return ReplyParameters(message_id=int(message_id), chat_id=other_chat, allow_sending_without_reply=True)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _coordinate(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _suffix(mime_type: str) -> str:
    return file_suffix(mime_type)


def _update_id(update: Update | dict[str, Any]) -> int:
    return int(update["update_id"]) if isinstance(update, dict) else update.update_id


def _raw(update: Any) -> Any:
    """An update as JSON to keep with an unreadable message."""
    return update.to_dict() if isinstance(update, Update) else update


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """The parts a long reply goes out in (see connectors.text.split_text)."""
    return _split_text(text, limit)
