"""Satisfaction surveys: CSAT (1-5) after a resolution, NPS (0-10) as a relationship survey.

Who gets one (`refusal`): a resolved conversation whose customer is neither erased nor marked
"do not contact" (`do_not_contact`), whose history was not imported, and that has a channel to
ask on; CSAT at most once per conversation (a constraint in the store) and not more often than
`[surveys] csat_every_days` per customer; NPS at most once per `nps_every_days` (default 90)
per customer across all their channels and merged customers. CSAT goes first: NPS is asked
after a resolution that got no CSAT question, so nobody gets two questions at once.

How it is asked (`question`): buttons where the channel shows them (`connectors.base.Button`,
ids `sv:<token>:<score>`), a page of the core's listener for e-mail when `[listener] public_url`
is set (the rating is saved only by the page's POST, so mail scanners that GET links vote for
nobody), else "answer with a number". Texts in Russian or English by the customer's language
(omniconsole/answers/language.py), each overridable in `[surveys.texts.<language>]`.

Answers are taken at ingest (store/analytics.py `take_survey_answer`): tied to the survey's
conversation and to who handled it when it was sent; never a customer message, never a
reopening; a low score leaves a note in the timeline.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from urllib.parse import parse_qs

from connectors.base import WebResponse, WebRoute
from omniconsole.store.analytics import SCALES, SurveyTarget, button_id

log = logging.getLogger(__name__)

#: Channel kinds whose connectors show buttons (`OutboundMessage.buttons`).
BUTTON_KINDS = frozenset({"telegram", "vk", "whatsapp", "web"})
#: Where the e-mail rating page lives on the listener.
PAGE_PATH = "/survey"

DEFAULT_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "csat": "How would you rate our help? Answer with a number from 1 (poor) to 5 (excellent).",
        "csat_buttons": "How would you rate our help? 1 is poor, 5 is excellent.",
        "csat_links": "How would you rate our help? Choose a rating (1 is poor, 5 is excellent):",
        "nps": "How likely are you to recommend us to a friend? Answer with a number from 0 (not at all) to 10 (certainly).",
        "nps_buttons": "How likely are you to recommend us to a friend? 0 is not at all, 10 is certainly.",
        "nps_links": "How likely are you to recommend us to a friend? Choose a number (0 is not at all, 10 is certainly):",
        "subject": "How did we do?",
        "page_confirm": "Save my rating: {score}",
        "page_thanks": "Thank you! Your rating is saved.",
        "page_unknown": "This survey link is not known or has expired.",
    },
    "ru": {
        "csat": "Как вы оцените нашу помощь? Ответьте числом от 1 (плохо) до 5 (отлично).",
        "csat_buttons": "Как вы оцените нашу помощь? 1 — плохо, 5 — отлично.",
        "csat_links": "Как вы оцените нашу помощь? Выберите оценку (1 — плохо, 5 — отлично):",
        "nps": "Насколько вероятно, что вы порекомендуете нас другу? Ответьте числом от 0 (точно нет) до 10 (точно да).",
        "nps_buttons": "Насколько вероятно, что вы порекомендуете нас другу? 0 — точно нет, 10 — точно да.",
        "nps_links": "Насколько вероятно, что вы порекомендуете нас другу? Выберите число (0 — точно нет, 10 — точно да):",
        "subject": "Как мы справились?",
        "page_confirm": "Сохранить оценку: {score}",
        "page_thanks": "Спасибо! Оценка сохранена.",
        "page_unknown": "Ссылка на опрос неизвестна или устарела.",
    },
}


def do_not_contact(attributes: dict) -> bool:
    """Whether the customer must not be contacted unasked. The one place that reads it: today
    a `do_not_contact` attribute or an SMS opt-out (`SMS opt-out (<channel>)`, written by the
    SMS channel); the customer flag of the consent work replaces this body."""
    if str(attributes.get("do_not_contact", "")).strip().lower() in ("1", "true", "yes"):
        return True
    return any(str(key).startswith("SMS opt-out") and value for key, value in attributes.items())


def text(settings, language: str, key: str) -> str:
    """A survey text in `language` ('en' or 'ru'), from `[surveys.texts.<language>]` if set."""
    language = language if language in DEFAULT_TEXTS else "en"
    return settings.texts.get(language, {}).get(key) or DEFAULT_TEXTS[language][key]


def refusal(target: SurveyTarget, kind: str, settings, now: float) -> str | None:
    """Why a survey of `kind` ('csat'|'nps') must not go to this conversation's customer, in
    words; None when it may."""
    if target.status != "resolved":
        return "the conversation is not resolved"
    if target.erased:
        return "the customer was erased"
    if do_not_contact(target.attributes):
        return "the customer is marked do not contact"
    if target.imported:
        return "imported history gets no survey"
    if target.route is None:
        return "the customer never wrote on a channel we can ask on"
    if target.bot_confirmed:
        # Issue #17: the customer already said the bot's answer helped; no further survey.
        return "the customer confirmed the bot's answer helped"
    if kind == "csat":
        if not settings.csat:
            return "CSAT surveys are off"
        if target.csat_for_conversation:
            return "this conversation had its CSAT question"
        if target.last_csat_at is not None and now - target.last_csat_at < settings.csat_every_days * 86400:
            return f"the customer was asked less than {settings.csat_every_days} days ago"
        return None
    if not settings.nps:
        return "NPS surveys are off"
    if target.last_nps_at is not None and now - target.last_nps_at < settings.nps_every_days * 86400:
        return f"the customer was asked to recommend us less than {settings.nps_every_days} days ago"
    return None


def question(kind: str, channel_kind: str, language: str, settings, public_url: str | None) -> tuple[str, dict]:
    """(body, meta) of a survey question; `{token}` in both is the survey's token (filled by
    the store). Meta `buttons`: [{"id", "title"}] for channels with buttons."""
    low, high = SCALES[kind]
    scores = range(low, high + 1)
    if channel_kind in BUTTON_KINDS:
        buttons = [{"id": button_id("{token}", s), "title": str(s)} for s in scores]
        return text(settings, language, f"{kind}_buttons"), {"buttons": buttons}
    if channel_kind == "email" and public_url:
        links = "\n".join(f"{s}: {public_url}{PAGE_PATH}?t={{token}}&s={s}" for s in scores)
        body = f"{text(settings, language, f'{kind}_links')}\n\n{links}"
        return body, {"subject": text(settings, language, "subject")}
    return text(settings, language, kind), {}


def language_of(target: SurveyTarget) -> str:
    """'ru' or 'en' by what the customer wrote; when that cannot tell (a file, "ok"), the
    language their channel said (the web chat widget's); English when neither does."""
    from omniconsole.answers.language import detect

    said = target.channel_language if target.channel_language in DEFAULT_TEXTS else None
    return detect(target.sample_text) or said or "en"


async def after_resolution(
    store, settings, conversation_id: int, *, public_url: str | None = None, now: float | None = None
) -> tuple[str, int] | None:
    """Ask the survey a resolution calls for, if any: returns (kind, survey id), or None (the
    reason is logged at debug level)."""
    now = time.time() if now is None else now
    target = await store.survey_target(conversation_id)
    if target is None:
        return None
    for kind in ("csat", "nps"):
        why = refusal(target, kind, settings, now)
        if why is not None:
            log.debug("no %s survey for conversation %d: %s", kind, conversation_id, why)
            continue
        language = language_of(target)
        body, meta = question(kind, target.route[1], language, settings, public_url)
        made = await store.record_survey(kind, target, language, body, meta)
        if made is not None:
            return kind, made[0]
    return None


class SurveyService:
    """What the core runs for surveys: a follower of the events log that asks after each
    resolution, and the e-mail rating page on the listener (`routes`)."""

    path = PAGE_PATH

    def __init__(self, store, settings, *, poll: float = 0.5):
        self.store = store
        self.settings = settings
        self.poll = poll

    @property
    def public_url(self) -> str | None:
        return self.settings.listener.public_url

    def routes(self) -> list[WebRoute]:
        """GET shows the rating with a button, POST saves it; none without `[listener]
        public_url` (no mail carries links then, and the listener need not start for them)."""
        if not self.public_url:
            return []
        return [WebRoute("GET", "", self._page), WebRoute("POST", "", self._save)]

    async def run(self) -> None:
        """Follow the events log from now on; each `conversation.resolved` may ask a survey.
        Resolutions while no core ran are not surveyed afterwards (they are old news)."""
        last = await self.store.last_event_id()
        while True:
            events = await self.store.events_since(last, limit=1000)
            for event in events:
                last = event.id
                if event.kind == "conversation.resolved" and event.conversation_id is not None:
                    # (A resolution by an import is refused by `refusal`: imported history.)
                    try:
                        await after_resolution(
                            self.store, self.settings.surveys, event.conversation_id, public_url=self.public_url
                        )
                    except Exception:
                        log.exception("survey for conversation %d failed", event.conversation_id)
            if not events:
                await asyncio.sleep(self.poll)

    async def _page(self, request) -> WebResponse:
        token, score = request.query.get("t", ""), request.query.get("s", "")
        survey = await self.store.pending_survey(token=token) if token else None
        if survey is None or not score.isdigit() or not SCALES[survey.kind][0] <= int(score) <= SCALES[survey.kind][1]:
            return _html(404, text(self.settings.surveys, "en", "page_unknown"))
        words = text(self.settings.surveys, survey.language, "page_confirm").replace("{score}", html.escape(score))
        form = (
            f'<form method="post" action="{PAGE_PATH}"><input type="hidden" name="t" value="{html.escape(token)}">'
            f'<input type="hidden" name="s" value="{html.escape(score)}"><button type="submit">{html.escape(words)}</button></form>'
        )
        return _html(200, form, raw=True)

    async def _save(self, request) -> WebResponse:
        fields = parse_qs(request.body.decode("utf-8", "replace"))
        token, score = (fields.get("t") or [""])[0], (fields.get("s") or [""])[0]
        survey = await self.store.pending_survey(token=token) if token else None
        if survey is None or not score.isdigit() or not SCALES[survey.kind][0] <= int(score) <= SCALES[survey.kind][1]:
            return _html(404, text(self.settings.surveys, "en", "page_unknown"))
        await self.store.record_survey_answer(survey.id, int(score), low_score_below=3 if survey.kind == "csat" else 7)
        return _html(200, text(self.settings.surveys, survey.language, "page_thanks"))


def _html(status: int, body: str, *, raw: bool = False) -> WebResponse:
    content = body if raw else f"<p>{html.escape(body)}</p>"
    page = f'<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex"></head><body>{content}</body></html>'
    return WebResponse(status, page.encode("utf-8"), "text/html; charset=utf-8", {"Cache-Control": "no-store"})
