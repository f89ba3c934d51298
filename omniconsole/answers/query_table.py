"""What the picker must find first in the demo shop's library (`demo_library/`): Russian and
English word forms, ё written as е and the reverse, case, one wrong letter in a long word,
partial words as typed. `tests/unit/test_answers_engine.py` holds the engine to it and
`omniconsole bench kb` scores the stemmers on it.

Each row: (query, language of the conversation or None, the article key that must come first).
"""

from __future__ import annotations

QUERY_TABLE: list[tuple[str, str | None, str]] = [
    # Russian word forms
    ("курьер не приехал", "ru", "delivery-late"),
    ("курьера не было", "ru", "delivery-late"),
    ("сроки доставки", "ru", "delivery-terms"),
    ("стоимость доставки", "ru", "delivery-terms"),
    ("перенести доставку", "ru", "delivery-reschedule"),
    ("изменить адрес доставки", "ru", "change-address"),
    ("адреса", "ru", "change-address"),
    ("возврат товара", "ru", "return-item"),
    ("вернуть товар", "ru", "return-item"),
    ("сроки возврата денег", "ru", "refund-time"),
    ("деньги на ту же карту", "ru", "refund-same-card"),
    ("списали дважды", "ru", "double-charge"),
    ("двойное списание", "ru", "double-charge"),
    ("выписку из банка", "ru", "statement-received"),
    ("оплата картой не проходит", "ru", "card-payment-failed"),
    ("карту отклонили", "ru", "card-payment-failed"),
    ("забыла пароль", "ru", "password-reset"),
    ("войти в кабинет", "ru", "password-reset"),
    ("письмо для восстановления", "ru", "reset-email-missing"),
    ("записаться на примерку", "ru", "fitting-booking"),
    ("примерки", "ru", "fitting-booking"),
    ("трек-номер не найден", "ru", "tracking-not-found"),
    ("трек номера", "ru", "tracking-not-found"),
    ("где мой заказ", "ru", "order-status"),
    ("посылку отправил обратно", "ru", "return-parcel-sent"),
    ("благодарю", "ru", "thanks-reply"),
    # ё and е, case
    ("КОГДА ПРИДЁТ ЗАКАЗ", "ru", "order-status"),
    ("когда придет заказ", "ru", "order-status"),
    ("не подошел размер", "ru", "return-item"),
    # one wrong letter in a long word
    ("курьир", "ru", "delivery-late"),
    ("примерку записатся", "ru", "fitting-booking"),
    ("вазврат товара", "ru", "return-item"),
    ("списание дважди", "ru", "double-charge"),
    # as typed (the last word is a prefix)
    ("пример", "ru", "fitting-booking"),
    ("трек", "ru", "tracking-not-found"),
    # English word forms
    ("the courier never came", "en", "delivery-late"),
    ("deliveries are late", "en", "delivery-late"),
    ("delivery prices", "en", "delivery-terms"),
    ("reschedule delivery", "en", "delivery-reschedule"),
    ("changing the address", "en", "change-address"),
    ("returning an item", "en", "return-item"),
    ("how long do refunds take", "en", "refund-time"),
    ("charged twice", "en", "double-charge"),
    ("card declined", "en", "card-payment-failed"),
    ("forgot password", "en", "password-reset"),
    ("password reset email never arrives", "en", "reset-email-missing"),
    ("booking a fitting", "en", "fitting-booking"),
    ("tracking number", "en", "tracking-not-found"),
    ("where is my order", "en", "order-status"),
    # English typos and prefixes
    ("pasword", "en", "password-reset"),
    ("refnud", "en", "refund-time"),
    ("statment", "en", "statement-received"),
    ("fitt", "en", "fitting-booking"),
    # shortcodes
    ("/late", None, "delivery-late"),
    ("/hi", None, "greeting"),
    ("check", None, "checking"),
]
