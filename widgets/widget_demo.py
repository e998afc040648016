"""`/dev/widget-demo` (outside production): a merchant's account page for a demo customer, with
the widget embedded by its one script tag, signed server-side as a merchant's server would sign
it. It shows the customer's in-app messages and opens the cancel flow from the page's own
button; other customers with open cases are a click away.
"""

import html
import uuid
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from churnsaver.backend.cases import service as cases
from churnsaver.backend.cases.models import CaseStatus
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.customers.models import Customer
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.backend.embeds.service import customer_signature, load_settings, publishable_key, widget_secret
from churnsaver.tenants.auth import AuthSubject
from churnsaver.tenants.models import Tenant
from churnsaver.widgets.widget_api import offers_now

DEMO_SLUG = "demo"
PICKS = 6
OFFERED_KINDS = ["payment_failed", "cancellation_scheduled"]
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">
<title>Demo Store · your account</title><style>
body{{font-family:Georgia,serif;background:#fbfaf7;color:#2b2118;margin:0}}
header{{background:#2b2118;color:#fbfaf7;padding:14px 32px;font-size:20px}}
main{{max-width:760px;margin:32px auto;padding:0 24px}}
button{{font:16px Georgia,serif;padding:10px 16px;cursor:pointer}}
.muted{{color:#7a6a5a;font-size:14px}}li{{margin:4px 0}}pre{{background:#f1ede4;padding:10px;white-space:pre-wrap}}
</style></head><body><header>Demo Store</header><main>
<h1>Your account</h1>
<p>Signed in as <strong>{name}</strong> ({customer}); {cases}.</p>
<p><button id="cancel" type="button">Cancel my subscription</button></p>
<p class="muted">This page stands for the merchant's own site. The widget was added to it with one
script tag; the customer's id in that tag is signed on the server with the tenant's widget secret.</p>
<h2>Events the widget sent this page</h2><pre id="events">(none yet)</pre>
<h2>Other demo customers with open cases</h2><ul>{others}</ul>
<script>
const log = document.getElementById("events");
for (const name of ["churnsaver:offer-accepted", "churnsaver:canceled", "churnsaver:closed"]) {{
  document.addEventListener(name, (event) => {{
    if (log.textContent === "(none yet)") log.textContent = "";
    log.textContent += name + " " + JSON.stringify(event.detail) + "\\n";
  }});
}}
document.getElementById("cancel").addEventListener("click", () => window.ChurnSaver.openCancelFlow());
</script>
<script src="/widgets/v1/churnsaver.js" data-key="{key}" data-customer="{customer}" data-signature="{signature}"
 async></script></main></body></html>"""


def not_ready(reason: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><title>Widget demo</title><p>{html.escape(reason)}</p>", status_code=404)


class WidgetDemo:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def routes(self) -> list[Route]:
        return [Route("/dev/widget-demo", self.page)]

    async def page(self, request: Request) -> Response:
        async with self.db.system_session() as session:
            tenant_id = (await session.execute(select(Tenant.id).where(Tenant.slug == DEMO_SLUG))).scalar_one_or_none()
        if tenant_id is None:
            return not_ready("No demo tenant: start with `make run` (CHURNSAVER_DEMO=1) on an empty database.")
        subject = AuthSubject.system(tenant_id)
        async with self.db.tenant_unit_of_work(tenant_id) as session:
            secret = await widget_secret(session, tenant_id, secret_key=self.settings.resolved_secret_key)
            key = await publishable_key(session, subject)
            # Cases an offer answers first (a failed payment, a scheduled cancel), then the rest.
            answered = await cases.list_cases(
                session,
                subject,
                filter=cases.CaseFilter(status=[CaseStatus.open.value], kind=OFFERED_KINDS),
                first=PICKS,
            )
            rest = await cases.list_cases(
                session, subject, filter=cases.CaseFilter(status=[CaseStatus.open.value]), first=PICKS
            )
            order = list(dict.fromkeys(case.customer_id for case in [*answered.rows, *rest.rows]))
            found = await CustomerRepository(session, tenant_id).get_many(order)
            customers = {customer_id: found[customer_id] for customer_id in order if customer_id in found}
            wanted = request.query_params.get("customer")
            if wanted:
                chosen = await CustomerRepository(session, tenant_id).get_by_external_id(wanted)
            else:
                chosen = await self._with_an_offer(session, tenant_id, list(customers.values()))
            chosen_cases = (
                await cases.list_cases(
                    session, subject, filter=cases.CaseFilter(status=[CaseStatus.open.value], customer_id=chosen.id)
                )
                if chosen is not None
                else None
            )
        if secret is None or chosen is None:
            return not_ready("The demo tenant has no widget secret or no customer to show yet.")
        kinds = ", ".join(sorted({case.kind for case in chosen_cases.rows})) if chosen_cases else ""
        others = "".join(
            f'<li><a href="/dev/widget-demo?{html.escape(urlencode({"customer": c.external_id}))}">'
            f"{html.escape(c.external_id)}</a></li>"
            for c in customers.values()
            if c.id != chosen.id
        )
        document = PAGE.format(
            name=html.escape(chosen.name or chosen.external_id),
            customer=html.escape(chosen.external_id),
            cases=html.escape(f"open cases: {kinds}" if kinds else "no open case"),
            others=others,
            key=html.escape(key),
            signature=customer_signature(secret, chosen.external_id),
        )
        return HTMLResponse(document, headers={"Cache-Control": "no-store"})

    async def _with_an_offer(
        self, session: AsyncSession, tenant_id: uuid.UUID, candidates: list[Customer]
    ) -> Customer | None:
        """The first candidate whom the cancel flow offers something whatever survey reason is
        picked (offers are chosen by reason, as the widget's session does), else the one offered
        something for the most reasons: the demo should show an offer when it can."""
        reasons = [reason.code for reason in (await load_settings(session, tenant_id)).survey_reasons]
        best, best_count = (candidates[0] if candidates else None), -1
        for customer in candidates:
            offered = 0
            for reason in reasons:
                _case, choices = await offers_now(
                    session, tenant_id, customer.id, cancel_reason=reason, locale="en", record=False
                )
                offered += bool(choices)
            if offered == len(reasons):
                return customer
            if offered > best_count:
                best, best_count = customer, offered
        return best
