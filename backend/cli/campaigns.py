"""`churnsaver campaigns list`: a tenant's campaigns (its default playbooks among them), with what
each has done so far."""

from typing import Annotated, Any

import typer
from rich.table import Table

from churnsaver.backend.campaigns import service
from churnsaver.backend.campaigns.models import Campaign
from churnsaver.backend.cli.command import Typer
from churnsaver.backend.cli.output import JsonOption, console, print_json, run_async
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.pagination import MAX_PAGE_SIZE
from churnsaver.tenants import service as tenants
from churnsaver.tenants.auth import AuthSubject

campaigns_app = Typer(help="List recovery campaigns.", no_args_is_help=True)


@campaigns_app.command("list")
def list_campaigns(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant's slug.")],
    as_json: JsonOption = False,
) -> None:
    """The tenant's campaigns, oldest first, with their steps and counts."""
    rows = run_async(_list)(tenant)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "status", "case kinds", "holdout", "enrolled", "held out", "sent", "pending")
    for row in rows:
        table.add_row(
            row["id"],
            row["name"],
            row["status"],
            ", ".join(row["case_kinds"]),
            f"{row['holdout_share']:.0%}",
            str(row["stats"]["enrolled"]),
            str(row["stats"]["held_out"]),
            str(row["stats"]["steps"].get("sent", 0)),
            str(row["stats"]["steps"].get("pending", 0)),
        )
    console.print(table)


async def _list(slug: str) -> list[dict[str, Any]]:
    db = Database(Settings())
    try:
        async with db.system_session() as session:
            tenant = await tenants.get_tenant_by_slug(session, slug)
        subject = AuthSubject.system(tenant.id)
        found: list[Campaign] = []
        # A unit of work: the default playbooks a first listing creates are kept, ids and all.
        async with db.tenant_unit_of_work(tenant.id) as session:
            after = None
            while True:
                page = await service.list_campaigns(session, subject, first=MAX_PAGE_SIZE, after=after)
                found += page.rows
                if not page.has_next_page:
                    break
                after = page.cursors[-1]
            stats = await service.stats(session, subject, [campaign.id for campaign in found])
        return [
            {
                "id": str(campaign.id),
                "name": campaign.name,
                "playbook": campaign.playbook,
                "status": campaign.status,
                "case_kinds": campaign.case_kinds,
                "audience": campaign.audience,
                "holdout_share": campaign.holdout_share,
                "variants": campaign.variants,
                "stats": {
                    "enrolled": stats[campaign.id].enrolled,
                    "held_out": stats[campaign.id].held_out,
                    "steps": stats[campaign.id].steps_by_status,
                },
                "created_at": campaign.created_at.isoformat(),
            }
            for campaign in found
        ]
    finally:
        await db.dispose()
