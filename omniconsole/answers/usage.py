"""Assist acceptance (METRICS.md): whether an operator changed an inserted answer before
sending it. The reply box keeps the texts it inserted (`AnswerPicker.Chosen.filled.text`,
suggestions likewise) with the ids `Store.kb_record_insertion` returned, and when the reply is
sent calls `Store.kb_record_sent(ids, message_id, was_edited(texts, sent_body))`.
"""

from __future__ import annotations


def _squash(text: str) -> str:
    return " ".join(text.split())


def was_edited(inserted: list[str], sent: str) -> bool:
    """True when any inserted answer no longer stands word for word in the sent body (spacing
    and line breaks aside); text the operator added around the answers is not an edit."""
    body = _squash(sent)
    return any(_squash(text) not in body for text in inserted if text.strip())
