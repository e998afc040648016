"""The public pages of channels: signed links (`/l/{token}`), unsubscribing (a page with a confirm
button, and RFC 8058 one-click POST), and, outside production, the captured mailbox (`/dev/mailbox`).

No login: a link's signature is its authority, and it reaches only the message it names. A bad
link gets a plain 4xx page that says why, never a stack trace.
"""

import html
import uuid
from datetime import datetime

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from churnsaver.backend.channels import service
from churnsaver.backend.channels.links import LinkClaims, LinkError, verify
from churnsaver.backend.channels.models import Message
from churnsaver.backend.core.config import Environment, Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.errors import DomainError, NotFound
from churnsaver.backend.core.repository import owned_by
from churnsaver.tenants.service import list_tenants

MAILBOX_PER_TENANT = 200
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;background:#f5f6f8;color:#1d2433;margin:0}
main{max-width:760px;margin:48px auto;background:#fff;border-radius:10px;padding:32px 36px;
box-shadow:0 1px 3px rgba(0,0,0,.08)}
h1{font-size:22px;margin:0 0 12px}p{line-height:1.5}
button{background:#2f6fed;color:#fff;border:0;border-radius:6px;padding:10px 18px;font-size:15px;cursor:pointer}
table{border-collapse:collapse;width:100%;font-size:14px}
td,th{text-align:left;padding:8px;border-bottom:1px solid #e4e7ec}
.muted{color:#667085;font-size:13px}.tag{background:#eef2ff;border-radius:4px;padding:2px 6px;font-size:12px}
iframe{width:100%;height:420px;border:1px solid #e4e7ec;border-radius:6px}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f5f6f8;
padding:12px;border-radius:6px}
"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{html.escape(title)}</title><style>{STYLE}</style></head>'
        f"<body><main>{body}</main></body></html>"
    )
    # A link's page must not leak its token onward, nor be framed by another site.
    headers = {"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
    return HTMLResponse(document, status_code=status, headers=headers)


def link_error(reason: str, status: int) -> HTMLResponse:
    body = f"<h1>This link cannot be used</h1><p>{html.escape(reason)}</p>"
    body += '<p class="muted">Ask the sender for a new message if you still need it.</p>'
    return page("Link not valid", body, status)


class ChannelPages:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def routes(self) -> list[Route]:
        routes = [Route("/l/{token}", self.link, methods=["GET", "POST"])]
        if self.settings.env is not Environment.production:
            routes += [
                Route("/dev/mailbox", self.mailbox),
                Route("/dev/mailbox/{tenant_id}/{message_id}", self.mailbox_message),
            ]
        return routes

    def _claims(self, token: str, now: datetime) -> LinkClaims:
        return verify(token, self.settings.resolved_secret_key, now)

    async def link(self, request: Request) -> Response:
        now = utcnow()
        try:
            claims = self._claims(request.path_params["token"], now)
        except LinkError as error:
            return link_error(error.reason, error.status)
        try:
            if request.method == "POST":
                return await self._unsubscribe(claims)
            async with self.db.tenant_unit_of_work(claims.tenant_id) as session:
                target = await service.open_link(session, claims, now)
        except NotFound:
            return link_error("This link does not lead anywhere any more.", 404)
        except DomainError as error:
            return link_error(str(error), 400)
        if target.purpose.value == "unsubscribe":
            channel = html.escape(target.message.channel.replace("_", "-"))
            body = (
                f"<h1>Unsubscribe</h1><p>Stop receiving {channel} messages like this one?</p>"
                '<form method="post"><button type="submit" name="List-Unsubscribe" value="One-Click">'
                "Unsubscribe</button></form>"
            )
            return page("Unsubscribe", body)
        if target.url is not None:
            return RedirectResponse(target.url, status_code=303)
        if target.purpose.value == "offer":
            offer = html.escape(str(target.message.variables.get("offer_description") or "Your offer"))
            return page("Your offer", f"<h1>Your offer</h1><p>{offer}</p>")
        body = "<h1>Update your payment details</h1><p>Please sign in to your account to update your card.</p>"
        return page("Update your payment details", body)

    async def _unsubscribe(self, claims: LinkClaims) -> Response:
        async with self.db.tenant_unit_of_work(claims.tenant_id) as session:
            message = await service.unsubscribe(session, claims)
        channel = html.escape(message.channel.replace("_", "-"))
        return page("Unsubscribed", f"<h1>You are unsubscribed</h1><p>You will receive no more {channel} messages.</p>")

    async def mailbox(self, request: Request) -> Response:
        """Every tenant's captured messages, newest first: what would have been sent."""
        rows: list[str] = []
        async with self.db.system_session() as session:
            tenants = await list_tenants(session)
        for tenant in tenants:
            async with self.db.tenant_session(tenant.id) as session:
                statement = (
                    select(Message)
                    .where(owned_by(tenant.id, Message), Message.captured.is_(True))
                    .order_by(Message.created_at.desc(), Message.id.desc())
                    .limit(MAILBOX_PER_TENANT)
                )
                for message in (await session.execute(statement)).scalars():
                    href = f"/dev/mailbox/{tenant.id}/{message.id}"
                    sent = f"{message.sent_at:%Y-%m-%d %H:%M}" if message.sent_at else ""
                    rows.append(
                        f"<tr><td>{html.escape(tenant.slug)}</td>"
                        f'<td><span class="tag">{html.escape(message.channel)}</span></td>'
                        f"<td>{html.escape(message.to_address or '')}</td>"
                        f'<td><a href="{href}">{html.escape(message.subject or message.body_text or "")[:90]}</a></td>'
                        f'<td class="muted">{sent}</td></tr>'
                    )
        table = (
            "<table><thead><tr><th>Tenant</th><th>Channel</th><th>To</th><th>Subject</th><th>Sent (UTC)</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>"
            if rows
            else "<p>No captured messages yet.</p>"
        )
        intro = (
            '<p class="muted">No SMTP server or SMS provider is configured, so messages are captured here '
            "instead of being sent. Not available in production.</p>"
        )
        return page("Captured mailbox", f"<h1>Captured mailbox</h1>{intro}{table}")

    async def mailbox_message(self, request: Request) -> Response:
        try:
            tenant_id = uuid.UUID(request.path_params["tenant_id"])
            message_id = uuid.UUID(request.path_params["message_id"])
        except ValueError:
            return page("Not found", "<h1>No such message</h1>", 404)
        async with self.db.tenant_session(tenant_id) as session:
            message = (
                await session.execute(select(Message).where(owned_by(tenant_id, Message), Message.id == message_id))
            ).scalar_one_or_none()
        if message is None or not message.captured:
            return page("Not found", "<h1>No such message</h1>", 404)
        parts = [
            f"<h1>{html.escape(message.subject or message.channel)}</h1>",
            f'<p class="muted">To {html.escape(message.to_address or "")} · {html.escape(message.channel)} · '
            f"{html.escape(message.locale or '')} · template {html.escape(message.template)}</p>",
        ]
        if message.body_html:
            # The HTML body shown sandboxed: no scripts, no forms, no access to this page.
            parts.append(f'<iframe sandbox="" srcdoc="{html.escape(message.body_html, quote=True)}"></iframe>')
        parts.append(f"<h2>Text</h2><pre>{html.escape(message.body_text or '')}</pre>")
        parts.append('<p><a href="/dev/mailbox">Back to the mailbox</a></p>')
        return page(message.subject or "Message", "".join(parts))
