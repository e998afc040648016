"""`churnsaver cases list`: a tenant's recovery cases, highest priority (expected loss) first."""

from typing import Annotated, Any

import typer
from rich.table import Table

from churnsaver.backend.cases import service
from churnsaver.backend.cases.models import CaseKind, CaseStatus, RecoveryCase
from churnsaver.backend.cli.command import Typer
from churnsaver.backend.cli.output import JsonOption, console, fail, print_json, run_async
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.money import format_money
from churnsaver.backend.core.pagination import MAX_PAGE_SIZE
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.tenants import service as tenants
from churnsaver.tenants.auth import AuthSubject

cases_app = Typer(help="List recovery cases.", no_args_is_help=True)
DEFAULT_LIMIT = 50


@cases_app.command("list")
def list_cases(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant's slug.")],
    status: Annotated[
        list[str] | None, typer.Option("--status", help="open, recovered, lost or dismissed; repeat for several.")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            help="payment_failed, cancellation_scheduled, canceled, downgraded, usage_drop or high_risk; repeatable.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many cases.")] = DEFAULT_LIMIT,
    as_json: JsonOption = False,
) -> None:
    """The tenant's cases, highest priority (churn probability x revenue at risk) first."""
    statuses = _checked(status, CaseStatus, "--status")
    kinds = _checked(kind, CaseKind, "--kind")
    rows = run_async(_list)(tenant, statuses, kinds, limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no cases", highlight=False)
        return
    table = Table(
        "id", "customer", "kind", "status", "expected loss", "at risk", "opened", "first touch due", "assignee"
    )
    for row in rows:
        due = _minute(row["first_touch_due_at"]) + (" (overdue)" if row["overdue"] else "")
        currency = row["revenue_at_risk"]["currency"]
        table.add_row(
            row["id"],
            row["customer"]["external_id"],
            row["kind"],
            row["status"],
            format_money(row["priority"], currency),
            format_money(row["revenue_at_risk"]["amount"], currency),
            _minute(row["opened_at"]),
            due,
            row["assignee"] or "",
        )
    console.print(table)


def _minute(moment: str) -> str:
    """An ISO time to the minute, UTC: "2026-12-06 08:47"."""
    return moment[:16].replace("T", " ")


def _checked(values: list[str] | None, allowed: type[CaseStatus] | type[CaseKind], option: str) -> list[str] | None:
    if not values:
        return None
    names = {member.value for member in allowed}
    wanted = [value.strip().lower() for value in values]
    for value in wanted:
        if value not in names:
            fail(f"{option}: {value!r} is not one of {', '.join(sorted(names))}")
    return wanted


async def _list(slug: str, statuses: list[str] | None, kinds: list[str] | None, limit: int) -> list[dict[str, Any]]:
    db = Database(Settings())
    try:
        async with db.system_session() as session:
            tenant = await tenants.get_tenant_by_slug(session, slug)
        subject = AuthSubject.system(tenant.id)
        found: list[RecoveryCase] = []
        async with db.tenant_session(tenant.id) as session:
            case_filter = service.CaseFilter(status=statuses, kind=kinds)
            after = None
            while len(found) < limit:
                page = await service.list_cases(
                    session, subject, filter=case_filter, first=min(MAX_PAGE_SIZE, limit - len(found)), after=after
                )
                found += page.rows
                if not page.has_next_page:
                    break
                after = page.cursors[-1]
            customers = await CustomerRepository(session, tenant.id).get_many(list({c.customer_id for c in found}))
        now = utcnow()
        return [
            {
                "id": str(case.id),
                "kind": case.kind,
                "status": case.status,
                "priority": case.priority,
                "revenue_at_risk": {"amount": case.revenue_at_risk, "currency": case.currency},
                "customer": {"id": str(case.customer_id), "external_id": customers[case.customer_id].external_id},
                "trigger": {"type": case.trigger_type, "occurred_at": case.trigger_occurred_at.isoformat()},
                "opened_at": case.opened_at.isoformat(),
                "first_touch_due_at": case.first_touch_due_at.isoformat(),
                "first_touch_at": case.first_touch_at.isoformat() if case.first_touch_at else None,
                "overdue": service.is_overdue(case, now),
                "resolved_at": case.resolved_at.isoformat() if case.resolved_at else None,
                "verified_at": case.verified_at.isoformat() if case.verified_at else None,
                "resolution_reason": case.resolution_reason,
                "assignee": case.assignee,
                "details": case.details,
            }
            for case in found
        ]
    finally:
        await db.dispose()
