"""One-click offer pages: `GET /o/{token}` shows the offer in the merchant's branding and the
customer's language with one button; the button POSTs the token back, which accepts the offer
through billing (billing.service.redeem) and shows the confirmation or billing's refusal.

A GET never changes anything, so a mail scanner that follows links accepts nothing. The pages
need no JavaScript, load nothing from any other host but the merchant's own logo, and cannot be
framed. A token is accepted once: its redemption's idempotency key is derived from it, so a
second POST (a reload, a double click) shows the first outcome and charges nothing again.
"""

import hashlib
import html
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from churnsaver.backend.billing import service as billing
from churnsaver.backend.channels.settings import load_settings as load_channel_settings
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.errors import DomainError, NotFound
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.embeds.service import load_settings as load_widget_settings
from churnsaver.backend.embeds.settings import DEFAULT_COLOR, LOCALES
from churnsaver.backend.offers import service as offers
from churnsaver.backend.offers.links import OfferClaims, OfferLinkError, read_offer_token
from churnsaver.backend.offers.models import OfferStatus, RedemptionStatus
from churnsaver.tenants.models import Tenant

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "offer_heading": "An offer for you",
        "accept": "Accept offer",
        "fine_print": "One click applies it to your subscription. Nothing else changes.",
        "applied": "Done: your offer is applied",
        "applied_text": "Thank you for staying with {brand}.",
        "pending": "Your offer is accepted",
        "pending_text": "It is being applied and shows on your account within a few minutes.",
        "continue": "Continue to update your card",
        "refused": "This offer could not be applied",
        "refused_text": "Your billing provider said: {reason}",
        "used": "This offer was already accepted",
        "used_text": "There is nothing more to do.",
        "unusable": "This link cannot be used",
        "ask": "Contact {brand} if you still need help.",
    },
    "es": {
        "offer_heading": "Una oferta para ti",
        "accept": "Aceptar la oferta",
        "fine_print": "Con un clic se aplica a tu suscripción. Nada más cambia.",
        "applied": "Listo: tu oferta está aplicada",
        "applied_text": "Gracias por quedarte con {brand}.",
        "pending": "Tu oferta está aceptada",
        "pending_text": "Se está aplicando y aparecerá en tu cuenta en unos minutos.",
        "continue": "Continuar para actualizar tu tarjeta",
        "refused": "No se pudo aplicar esta oferta",
        "refused_text": "Tu proveedor de pagos dijo: {reason}",
        "used": "Esta oferta ya fue aceptada",
        "used_text": "No hace falta nada más.",
        "unusable": "Este enlace no se puede usar",
        "ask": "Contacta con {brand} si aún necesitas ayuda.",
    },
    "de": {
        "offer_heading": "Ein Angebot für Sie",
        "accept": "Angebot annehmen",
        "fine_print": "Ein Klick wendet es auf Ihr Abo an. Sonst ändert sich nichts.",
        "applied": "Erledigt: Ihr Angebot ist aktiv",
        "applied_text": "Danke, dass Sie bei {brand} bleiben.",
        "pending": "Ihr Angebot ist angenommen",
        "pending_text": "Es wird eingerichtet und erscheint in wenigen Minuten in Ihrem Konto.",
        "continue": "Weiter zur Aktualisierung Ihrer Karte",
        "refused": "Dieses Angebot konnte nicht angewendet werden",
        "refused_text": "Ihr Zahlungsanbieter meldet: {reason}",
        "used": "Dieses Angebot wurde bereits angenommen",
        "used_text": "Es ist nichts weiter zu tun.",
        "unusable": "Dieser Link kann nicht verwendet werden",
        "ask": "Wenden Sie sich an {brand}, wenn Sie noch Hilfe brauchen.",
    },
}
# The page may show the merchant's logo (https) and post its one form to itself; nothing else.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f5f6f8;color:#1d2433;margin:0}
main{max-width:520px;margin:56px auto;background:#fff;border-radius:14px;padding:32px 32px 28px;
box-shadow:0 1px 3px rgba(16,24,40,.1);border-top:5px solid var(--brand)}
header{display:flex;align-items:center;gap:12px;font-weight:600;color:#344054;margin:0 0 20px}
header img{height:32px;max-width:140px;object-fit:contain}
h1{font-size:24px;line-height:1.25;margin:0 0 10px}p{line-height:1.5;color:#475467;margin:0 0 14px}
.offer{border:1px solid #d0d5dd;border-left:4px solid var(--brand);border-radius:10px;padding:16px 18px;margin:0 0 20px}
.offer strong{display:block;font-size:19px;color:#1d2433;margin:0 0 4px}
button,.button{display:inline-block;background:var(--brand);color:#fff;border:0;border-radius:8px;padding:12px 22px;
font:600 16px system-ui,sans-serif;cursor:pointer;text-decoration:none}
button:focus-visible,.button:focus-visible{outline:3px solid #1d2433;outline-offset:3px}
.small{font-size:13px;color:#667085;margin:14px 0 0}
"""


def one_click_key(token: str) -> str:
    """The redemption idempotency key of a token: one accept per token, however often it is POSTed."""
    return f"one_click:{hashlib.sha256(token.encode()).hexdigest()[:48]}"


@dataclass(frozen=True, slots=True)
class Look:
    """What a page looks like and speaks: the merchant's branding and the customer's language."""

    brand: str
    logo_url: str | None
    color: str
    locale: str

    def t(self, key: str, **values: str) -> str:
        text = STRINGS[self.locale].get(key) or STRINGS["en"][key]
        return text.format(brand=self.brand, **values)


PLAIN = Look(brand="", logo_url=None, color=DEFAULT_COLOR, locale="en")


def page(look: Look, title: str, body: str, status: int = 200) -> HTMLResponse:
    logo = f'<img src="{html.escape(look.logo_url)}" alt="">' if look.logo_url else ""
    header = f"<header>{logo}<span>{html.escape(look.brand)}</span></header>" if look.brand else ""
    document = (
        f'<!doctype html><html lang="{look.locale}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">'
        f"<title>{html.escape(title)}</title><style>:root{{--brand:{look.color}}}{STYLE}</style></head>"
        f"<body><main>{header}{body}</main></body></html>"
    )
    headers = {
        "Content-Security-Policy": CSP,
        "Cache-Control": "no-store",
    }
    return HTMLResponse(document, status_code=status, headers=headers)


def message_page(look: Look, heading: str, text: str, status: int, extra: str = "") -> HTMLResponse:
    body = f"<h1>{html.escape(heading)}</h1><p>{html.escape(text)}</p>{extra}"
    return page(look, heading, body, status)


def unusable(look: Look, reason: str, status: int) -> HTMLResponse:
    ask = f'<p class="small">{html.escape(look.t("ask"))}</p>' if look.brand else ""
    return message_page(look, look.t("unusable"), reason, status, ask)


class OfferPages:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def routes(self) -> list[Route]:
        return [Route("/o/{token}", self.offer_page, methods=["GET", "POST"])]

    async def _look(self, claims: OfferClaims) -> Look:
        async with self.db.tenant_session(claims.tenant_id) as session:
            tenant = await session.get(Tenant, claims.tenant_id)
            customer = await CustomerRepository(session, claims.tenant_id).get(claims.customer_id)
            widget = await load_widget_settings(session, claims.tenant_id)
            channel = await load_channel_settings(session, claims.tenant_id)
        wanted = str((customer.traits or {}).get("locale") or "") if customer is not None else ""
        locale = next(
            (code for code in (wanted.split("-")[0].lower(), channel.default_locale) if code in LOCALES), "en"
        )
        brand = widget.brand_name or (tenant.name if tenant is not None else "")
        return Look(brand=brand, logo_url=widget.logo_url, color=widget.brand_color, locale=locale)

    async def offer_page(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            claims = read_offer_token(self.settings, token, utcnow())
        except OfferLinkError as error:
            return unusable(PLAIN, error.reason, error.status)
        look = await self._look(claims)
        if request.method == "POST":
            return await self._accept(look, claims, token)
        async with self.db.tenant_session(claims.tenant_id) as session:
            offer = await offers.get_offer_for(session, claims.tenant_id, claims.offer_id)
            used = await offers.redemption_by_key(session, claims.tenant_id, one_click_key(token))
        if offer is None or offer.status != OfferStatus.active.value:
            return unusable(look, "This offer is no longer available.", 410)
        if used is not None and used.status != RedemptionStatus.FAILED.value:
            return message_page(look, look.t("used"), look.t("used_text"), 200)
        title, description = offers.describe(offer, look.locale)
        body = (
            f"<h1>{html.escape(look.t('offer_heading'))}</h1>"
            f'<div class="offer"><strong>{html.escape(title)}</strong>{html.escape(description)}</div>'
            '<form method="post"><button type="submit">'
            f"{html.escape(look.t('accept'))}</button></form>"
            f'<p class="small">{html.escape(look.t("fine_print"))}</p>'
        )
        return page(look, title, body)

    async def _accept(self, look: Look, claims: OfferClaims, token: str) -> Response:
        try:
            outcome = await billing.redeem(
                self.db,
                tenant_id=claims.tenant_id,
                offer_id=claims.offer_id,
                customer_id=claims.customer_id,
                case_id=claims.case_id,
                source="one_click",
                idempotency_key=one_click_key(token),
            )
        except offers.AlreadyRedeemed:
            return message_page(look, look.t("used"), look.t("used_text"), 409)
        except NotFound:
            return unusable(look, "This offer is no longer available.", 410)
        except DomainError as error:
            return unusable(look, str(error), 409)
        if outcome.status == RedemptionStatus.FAILED.value:
            reason = outcome.reason or "no reason given"
            return message_page(look, look.t("refused"), look.t("refused_text", reason=reason), 409)
        if outcome.status == RedemptionStatus.PENDING.value:
            return message_page(look, look.t("pending"), look.t("pending_text"), 202)
        extra = ""
        if outcome.hosted_url is not None:
            # A link, not a redirect: the page's form-action allows only this site.
            href, label = html.escape(outcome.hosted_url), html.escape(look.t("continue"))
            extra = f'<p><a class="button" href="{href}">{label}</a></p>'
        return message_page(look, look.t("applied"), look.t("applied_text"), 200, extra)
