"""The built-in templates: one per playbook step and channel, in English, Spanish and German.

A tenant's own template (`message_templates`) for the same key, channel and locale wins. Keys are
what campaign steps name; each key belongs to the channels it lists.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TemplateText:
    subject: str | None
    body_text: str
    body_html: str | None = None


LOCALES = ("en", "es", "de")

_FOOTER = {
    "en": "You receive this because you are a customer of {{ merchant_name }}. Unsubscribe: {{ unsubscribe_link }}",
    "es": "Recibes esto porque eres cliente de {{ merchant_name }}. Darte de baja: {{ unsubscribe_link }}",
    "de": "Sie erhalten dies als Kunde von {{ merchant_name }}. Abmelden: {{ unsubscribe_link }}",
}
_FOOTER_HTML = {
    "en": '<p style="color:#666;font-size:12px">You receive this because you are a customer of {{ merchant_name }}. '
    '<a href="{{ unsubscribe_link }}">Unsubscribe</a></p>',
    "es": '<p style="color:#666;font-size:12px">Recibes esto porque eres cliente de {{ merchant_name }}. '
    '<a href="{{ unsubscribe_link }}">Darte de baja</a></p>',
    "de": '<p style="color:#666;font-size:12px">Sie erhalten dies als Kunde von {{ merchant_name }}. '
    '<a href="{{ unsubscribe_link }}">Abmelden</a></p>',
}

# key -> locale -> (subject, the message's body text, the call to action's link variable, its label)
_EMAILS: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "payment_failed_update_card": {
        "en": (
            "Your payment for {{ plan }} did not go through",
            "Hi {{ customer_name }}, we could not charge {{ amount_due }} for {{ plan }}. "
            "Please update your card to keep your access.",
            "update_payment_link",
            "Update your card",
        ),
        "es": (
            "Tu pago de {{ plan }} no se completó",
            "Hola {{ customer_name }}, no pudimos cobrar {{ amount_due }} por {{ plan }}. "
            "Actualiza tu tarjeta para mantener tu acceso.",
            "update_payment_link",
            "Actualizar tarjeta",
        ),
        "de": (
            "Ihre Zahlung für {{ plan }} ist fehlgeschlagen",
            "Hallo {{ customer_name }}, wir konnten {{ amount_due }} für {{ plan }} nicht abbuchen. "
            "Bitte aktualisieren Sie Ihre Karte, um Ihren Zugang zu behalten.",
            "update_payment_link",
            "Karte aktualisieren",
        ),
    },
    "payment_failed_offer": {
        "en": (
            "An offer to keep {{ plan }}",
            "Hi {{ customer_name }}, your payment of {{ amount_due }} is still open. {{ offer_description }}",
            "offer_link",
            "Take the offer",
        ),
        "es": (
            "Una oferta para mantener {{ plan }}",
            "Hola {{ customer_name }}, tu pago de {{ amount_due }} sigue pendiente. {{ offer_description }}",
            "offer_link",
            "Aceptar la oferta",
        ),
        "de": (
            "Ein Angebot, damit Sie {{ plan }} behalten",
            "Hallo {{ customer_name }}, Ihre Zahlung von {{ amount_due }} ist noch offen. {{ offer_description }}",
            "offer_link",
            "Angebot annehmen",
        ),
    },
    "payment_failed_final_notice": {
        "en": (
            "Last notice: your access to {{ plan }} ends soon",
            "Hi {{ customer_name }}, {{ amount_due }} is still unpaid and your access to {{ plan }} ends soon.",
            "update_payment_link",
            "Update your card now",
        ),
        "es": (
            "Último aviso: tu acceso a {{ plan }} termina pronto",
            "Hola {{ customer_name }}, {{ amount_due }} sigue sin pagarse y tu acceso a {{ plan }} termina pronto.",
            "update_payment_link",
            "Actualizar tarjeta ahora",
        ),
        "de": (
            "Letzte Erinnerung: Ihr Zugang zu {{ plan }} endet bald",
            "Hallo {{ customer_name }}, {{ amount_due }} ist noch offen und Ihr Zugang zu {{ plan }} endet bald.",
            "update_payment_link",
            "Jetzt Karte aktualisieren",
        ),
    },
    "cancellation_offer": {
        "en": (
            "Before you go: an offer for {{ plan }}",
            "Hi {{ customer_name }}, we are sorry to see you cancel {{ plan }}. {{ offer_description }}",
            "offer_link",
            "Stay with the offer",
        ),
        "es": (
            "Antes de irte: una oferta para {{ plan }}",
            "Hola {{ customer_name }}, lamentamos que canceles {{ plan }}. {{ offer_description }}",
            "offer_link",
            "Quedarme con la oferta",
        ),
        "de": (
            "Bevor Sie gehen: ein Angebot für {{ plan }}",
            "Hallo {{ customer_name }}, schade, dass Sie {{ plan }} kündigen. {{ offer_description }}",
            "offer_link",
            "Mit dem Angebot bleiben",
        ),
    },
    "cancellation_reminder": {
        "en": (
            "Your access to {{ plan }} ends in 3 days",
            "Hi {{ customer_name }}, your {{ plan }} ends in 3 days. You can still keep it.",
            "offer_link",
            "Keep {{ plan }}",
        ),
        "es": (
            "Tu acceso a {{ plan }} termina en 3 días",
            "Hola {{ customer_name }}, tu {{ plan }} termina en 3 días. Aún puedes mantenerlo.",
            "offer_link",
            "Mantener {{ plan }}",
        ),
        "de": (
            "Ihr Zugang zu {{ plan }} endet in 3 Tagen",
            "Hallo {{ customer_name }}, Ihr {{ plan }} endet in 3 Tagen. Sie können es noch behalten.",
            "offer_link",
            "{{ plan }} behalten",
        ),
    },
    "winback": {
        "en": (
            "We miss you at {{ merchant_name }}",
            "Hi {{ customer_name }}, come back to {{ plan }}. {{ offer_description }}",
            "offer_link",
            "Come back",
        ),
        "es": (
            "Te echamos de menos en {{ merchant_name }}",
            "Hola {{ customer_name }}, vuelve a {{ plan }}. {{ offer_description }}",
            "offer_link",
            "Volver",
        ),
        "de": (
            "Wir vermissen Sie bei {{ merchant_name }}",
            "Hallo {{ customer_name }}, kommen Sie zurück zu {{ plan }}. {{ offer_description }}",
            "offer_link",
            "Zurückkommen",
        ),
    },
    "downgrade_followup": {
        "en": (
            "How is {{ plan }} working for you?",
            "Hi {{ customer_name }}, you moved to {{ plan }}. {{ offer_description }}",
            "offer_link",
            "See your options",
        ),
        "es": (
            "¿Qué tal te va con {{ plan }}?",
            "Hola {{ customer_name }}, cambiaste a {{ plan }}. {{ offer_description }}",
            "offer_link",
            "Ver opciones",
        ),
        "de": (
            "Wie gefällt Ihnen {{ plan }}?",
            "Hallo {{ customer_name }}, Sie sind zu {{ plan }} gewechselt. {{ offer_description }}",
            "offer_link",
            "Optionen ansehen",
        ),
    },
    "usage_drop_checkin": {
        "en": (
            "Can we help you get more from {{ plan }}?",
            "Hi {{ customer_name }}, we noticed you use {{ plan }} less lately. We are here to help.",
            "offer_link",
            "Get help",
        ),
        "es": (
            "¿Te ayudamos a sacar más de {{ plan }}?",
            "Hola {{ customer_name }}, notamos que usas menos {{ plan }}. Estamos para ayudarte.",
            "offer_link",
            "Obtener ayuda",
        ),
        "de": (
            "Können wir helfen, mehr aus {{ plan }} zu holen?",
            "Hallo {{ customer_name }}, Sie nutzen {{ plan }} zuletzt weniger. Wir helfen gern.",
            "offer_link",
            "Hilfe erhalten",
        ),
    },
    "high_risk_checkin": {
        "en": (
            "A thank-you from {{ merchant_name }}",
            "Hi {{ customer_name }}, thank you for being with us on {{ plan }}. {{ offer_description }}",
            "offer_link",
            "See what is new",
        ),
        "es": (
            "Un agradecimiento de {{ merchant_name }}",
            "Hola {{ customer_name }}, gracias por estar con nosotros en {{ plan }}. {{ offer_description }}",
            "offer_link",
            "Ver novedades",
        ),
        "de": (
            "Ein Dankeschön von {{ merchant_name }}",
            "Hallo {{ customer_name }}, danke, dass Sie {{ plan }} nutzen. {{ offer_description }}",
            "offer_link",
            "Neuigkeiten ansehen",
        ),
    },
}

# key -> locale -> the short text of an SMS, an in-app banner or a Whop notification
_SHORT: dict[str, dict[str, str]] = {
    "payment_failed_update_card": {
        "en": "{{ merchant_name }}: your payment of {{ amount_due }} failed. "
        "Update your card: {{ update_payment_link }}",
        "es": "{{ merchant_name }}: tu pago de {{ amount_due }} falló. Actualiza tu tarjeta: {{ update_payment_link }}",
        "de": "{{ merchant_name }}: Ihre Zahlung von {{ amount_due }} ist fehlgeschlagen. "
        "Karte aktualisieren: {{ update_payment_link }}",
    },
    "payment_failed_offer": {
        "en": "{{ merchant_name }}: {{ offer_description }} {{ offer_link }}",
        "es": "{{ merchant_name }}: {{ offer_description }} {{ offer_link }}",
        "de": "{{ merchant_name }}: {{ offer_description }} {{ offer_link }}",
    },
    "payment_failed_final_notice": {
        "en": "{{ merchant_name }}: last notice, your access to {{ plan }} ends soon. {{ update_payment_link }}",
        "es": "{{ merchant_name }}: último aviso, tu acceso a {{ plan }} termina pronto. {{ update_payment_link }}",
        "de": "{{ merchant_name }}: letzte Erinnerung, Ihr Zugang zu {{ plan }} endet bald. {{ update_payment_link }}",
    },
    "cancellation_offer": {
        "en": "Before you go: {{ offer_description }} {{ offer_link }}",
        "es": "Antes de irte: {{ offer_description }} {{ offer_link }}",
        "de": "Bevor Sie gehen: {{ offer_description }} {{ offer_link }}",
    },
    "cancellation_reminder": {
        "en": "Your {{ plan }} ends in 3 days. Keep it: {{ offer_link }}",
        "es": "Tu {{ plan }} termina en 3 días. Mantenlo: {{ offer_link }}",
        "de": "Ihr {{ plan }} endet in 3 Tagen. Behalten: {{ offer_link }}",
    },
    "winback": {
        "en": "We miss you at {{ merchant_name }}. {{ offer_description }} {{ offer_link }}",
        "es": "Te echamos de menos en {{ merchant_name }}. {{ offer_description }} {{ offer_link }}",
        "de": "Wir vermissen Sie bei {{ merchant_name }}. {{ offer_description }} {{ offer_link }}",
    },
    "downgrade_followup": {
        "en": "How is {{ plan }} working for you? {{ offer_link }}",
        "es": "¿Qué tal {{ plan }}? {{ offer_link }}",
        "de": "Wie gefällt Ihnen {{ plan }}? {{ offer_link }}",
    },
    "usage_drop_checkin": {
        "en": "Can we help you get more from {{ plan }}? {{ offer_link }}",
        "es": "¿Te ayudamos con {{ plan }}? {{ offer_link }}",
        "de": "Können wir bei {{ plan }} helfen? {{ offer_link }}",
    },
    "high_risk_checkin": {
        "en": "Thank you for being with {{ merchant_name }}. {{ offer_link }}",
        "es": "Gracias por estar con {{ merchant_name }}. {{ offer_link }}",
        "de": "Danke, dass Sie bei {{ merchant_name }} sind. {{ offer_link }}",
    },
}

_SMS_STOP = {"en": " Reply STOP to opt out.", "es": " Responde STOP para darte de baja.", "de": " STOP zum Abmelden."}


def _email(subject: str, text: str, link: str, label: str, locale: str) -> TemplateText:
    body_text = f"{text}\n\n{label}: {{{{ {link} }}}}\n\n{_FOOTER[locale]}\n"
    body_html = (
        f"<p>{text}</p>\n"
        f'<p><a href="{{{{ {link} }}}}" style="background:#2f6fed;color:#fff;padding:10px 16px;'
        f'border-radius:6px;text-decoration:none">{label}</a></p>\n{_FOOTER_HTML[locale]}\n'
    )
    return TemplateText(subject=subject, body_text=body_text, body_html=body_html)


def _build() -> dict[tuple[str, str, str], TemplateText]:
    built: dict[tuple[str, str, str], TemplateText] = {}
    for key, locales in _EMAILS.items():
        for locale, (subject, text, link, label) in locales.items():
            built[(key, "email", locale)] = _email(subject, text, link, label, locale)
    for key, short in _SHORT.items():
        for locale, text in short.items():
            built[(key, "sms", locale)] = TemplateText(subject=None, body_text=text + _SMS_STOP[locale])
            built[(key, "in_app", locale)] = TemplateText(subject=None, body_text=text)
            built[(key, "whop", locale)] = TemplateText(subject="{{ merchant_name }}", body_text=text)
    return built


DEFAULTS = _build()
KEYS = tuple(sorted({key for key, _, _ in DEFAULTS}))
