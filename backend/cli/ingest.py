"""`churnsaver ingest retry`: process again the deliveries that failed or were quarantined.

The rows go back to pending (with their processing job enqueued, as GraphQL `retryFailedEvents`
does) and are then processed here, inline, batch by batch, so the command reports what happened.
If it stops before that, the enqueued jobs process the rows once a worker runs.
"""

import uuid
from typing import Annotated, Any

import typer

from churnsaver.backend.cli.command import Typer
from churnsaver.backend.cli.output import JsonOption, console, fail, print_json, run_async
from churnsaver.backend.core.config import Settings
from churnsaver.backend.core.db import Database
from churnsaver.backend.core.errors import NotFound
from churnsaver.backend.core.logging import configure_logging
from churnsaver.backend.ingest import service
from churnsaver.backend.ingest.tasks import BATCH_LIMIT, process_pending
from churnsaver.graphql.node import parse_node_uuid
from churnsaver.tenants import service as tenants
from churnsaver.tenants.auth import AuthSubject

ingest_app = Typer(help="Operate the inbox of received deliveries.", no_args_is_help=True)

TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant's slug.")]
IdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--id",
        help="A delivery to retry: its inbox id or its failedEvents id. Repeatable; default: every one of the tenant.",
        show_default=False,
    ),
]


@ingest_app.command("retry")
def retry(tenant: TenantOption, ids: IdOption = None, as_json: JsonOption = False) -> None:
    """Process failed or quarantined deliveries again, after the cause was fixed."""
    inbox_ids = [_inbox_id(value) for value in ids] if ids else None
    configure_logging("WARNING")  # on stderr: stdout holds only the report
    requeued, still_failing = run_async(_retry)(tenant, inbox_ids)
    processed = len(requeued) - len(still_failing)
    if as_json:
        print_json(
            {
                "requeued": len(requeued),
                "processed": processed,
                "still_failing": [{"id": str(row), "reason": reason} for row, reason in still_failing.items()],
            }
        )
        return
    console.print(
        f"requeued {len(requeued):,}, processed {processed:,}, still failing {len(still_failing):,}", highlight=False
    )
    for row, reason in still_failing.items():
        # A reason may quote the delivery's own text: printed as is, never read as markup.
        console.print(f"  {row}: {reason}", markup=False, highlight=False, soft_wrap=True)


def _inbox_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        pass
    try:
        return parse_node_uuid(value, "FailedEvent")
    except NotFound:
        fail(f"{value!r} is not an inbox id or a failedEvents id")


async def _retry(slug: str, inbox_ids: list[uuid.UUID] | None) -> tuple[list[uuid.UUID], dict[uuid.UUID, Any]]:
    db = Database(Settings())
    try:
        async with db.system_session() as session:
            tenant = await tenants.get_tenant_by_slug(session, slug)
        async with db.tenant_unit_of_work(tenant.id) as session:
            requeued = await service.retry_failed_events(session, AuthSubject.system(tenant.id), inbox_ids)
        still_failing: dict[uuid.UUID, Any] = {}
        for start in range(0, len(requeued), BATCH_LIMIT):
            result = await process_pending(db, tenant.id, requeued[start : start + BATCH_LIMIT])
            still_failing |= result.not_processed
        return requeued, still_failing
    finally:
        await db.dispose()
