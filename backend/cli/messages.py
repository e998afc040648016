"""`churnsaver messages list`: a tenant's messages (email, SMS, in-app, Whop), newest first."""

import uuid
from typing import Annotated, Any

import typer
from rich.table import Table

from churnsaver.backend.cases import service as cases
from churnsaver.backend.channels import service
from churnsaver.backend.channels.models import Message
from churnsaver.backend.cli.command import Typer
from churnsaver.backend.cli.output import JsonOption, console, fail, print_json, run_async
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.errors import NotFound
from churnsaver.backend.core.pagination import MAX_PAGE_SIZE
from churnsaver.backend.customers.repository import CustomerRepository
from churnsaver.tenants import service as tenants
from churnsaver.tenants.auth import AuthSubject

messages_app = Typer(help="List messages sent to customers.", no_args_is_help=True)
DEFAULT_LIMIT = 50


@messages_app.command("list")
def list_messages(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant's slug.")],
    case: Annotated[str | None, typer.Option("--case", help="Only the messages of this case (its id).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many messages.")] = DEFAULT_LIMIT,
    as_json: JsonOption = False,
) -> None:
    """The tenant's messages, newest first: channel, status (and why), recipient, subject."""
    case_id = None
    if case is not None:
        try:
            case_id = uuid.UUID(case.strip())
        except ValueError:
            fail(f"--case: {case!r} is not a case id (a UUID, as `churnsaver cases list` shows)")
    rows = run_async(_list)(tenant, case_id, limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no messages", highlight=False)
        return
    # The columns a person scans; ids, templates and subjects are in --json.
    table = Table("customer", "channel", "status", "to", "sent")
    for row in rows:
        status = row["status"] + (" (captured)" if row["captured"] else "") + (" (test)" if row["test"] else "")
        if row["reason"]:
            status += f": {row['reason']}"
        table.add_row(
            row["customer"]["external_id"],
            row["channel"],
            status,
            row["to_address"] or "",
            (row["sent_at"] or "")[:16].replace("T", " "),
        )
    console.print(table)


async def _list(slug: str, case_id: uuid.UUID | None, limit: int) -> list[dict[str, Any]]:
    db = Database(Settings())
    try:
        async with db.system_session() as session:
            tenant = await tenants.get_tenant_by_slug(session, slug)
        subject = AuthSubject.system(tenant.id)
        found: list[Message] = []
        async with db.tenant_session(tenant.id) as session:
            if case_id is not None:
                try:
                    await cases.get_case(session, subject, case_id)
                except NotFound:
                    fail(f"--case: tenant {slug!r} has no case {case_id}")
            message_filter = service.MessageFilter(case_id=case_id)
            after = None
            while len(found) < limit:
                page = await service.list_messages(
                    session, subject, filter=message_filter, first=min(MAX_PAGE_SIZE, limit - len(found)), after=after
                )
                found += page.rows
                if not page.has_next_page:
                    break
                after = page.cursors[-1]
            customers = await CustomerRepository(session, tenant.id).get_many(list({m.customer_id for m in found}))
        return [_row(message, customers[message.customer_id].external_id) for message in found]
    finally:
        await db.dispose()


def _row(message: Message, external_id: str) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "customer": {"id": str(message.customer_id), "external_id": external_id},
        "case_id": str(message.case_id) if message.case_id else None,
        "campaign_id": str(message.campaign_id) if message.campaign_id else None,
        "channel": message.channel,
        "template": message.template,
        "locale": message.locale,
        "status": message.status,
        "reason": message.reason,
        "captured": message.captured,
        "test": message.test,
        "to_address": message.to_address,
        "subject": message.subject,
        "provider_message_id": message.provider_message_id,
        "scheduled_for": message.scheduled_for.isoformat() if message.scheduled_for else None,
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "created_at": message.created_at.isoformat(),
    }
