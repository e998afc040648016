"""A bulk events import ends where the events API ends: same customers, subscriptions, timeline,
daily aggregates and risk features; a re-run or a resumed run adds nothing."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.cases.tasks import EVALUATE_CUSTOMERS, evaluate
from churnsaver.backend.customers.models import Customer, CustomerDailyActivity, CustomerDailyState
from churnsaver.backend.ingest.imports import import_events
from churnsaver.backend.ingest.models import InboxEvent, InboxStatus
from churnsaver.backend.ingest.tasks import process_pending
from churnsaver.backend.risk.features import discover_spec, feature_matrix
from churnsaver.backend.synthetic.generator import generate
from churnsaver.jobs.models import OutboxJob
from tests.fixtures.ingest_state import assert_same_state, ingest_state
from tests.fixtures.poison_deliveries import REFUSED_MESSAGE, store_refusing

START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2025, 4, 1, tzinfo=UTC)
API_BATCH_ITEMS = 50


@pytest.fixture(autouse=True)
def parse_in_a_process(monkeypatch):
    """Every file here is parsed by the parsing process, as a large file is (a small one is
    parsed in the importing process; tests/ingest/test_imports.py imports those)."""
    monkeypatch.setattr("churnsaver.backend.ingest.imports.PARSER_PROCESS_BYTES", 0)


@pytest.fixture(scope="module")
def history() -> list[dict[str, Any]]:
    return generate(seed=19, customers=12, start=START, end=END).items


def write_history(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


async def run_import(db, tenant_id: uuid.UUID, path: Path):
    return await import_events(db, tenant_id, path, on_progress=lambda _done: None)


async def send_through_the_api(client, db, tenant, items: list[dict[str, Any]]) -> None:
    """Post the items to the events API in small batches, each processed as its job would."""
    for start in range(0, len(items), API_BATCH_ITEMS):
        response = await client.post(
            "/v1/events", json={"batch": items[start : start + API_BATCH_ITEMS]}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        async with db.tenant_session(tenant.id) as session:
            statement = select(InboxEvent.id).where(
                InboxEvent.tenant_id == tenant.id, InboxEvent.status == InboxStatus.pending
            )
            pending = list((await session.execute(statement)).scalars())
        await process_pending(db, tenant.id, pending)


async def aggregates(db, tenant_id: uuid.UUID) -> tuple[list[Any], list[Any]]:
    async with db.tenant_session(tenant_id) as session:
        names = dict((await session.execute(select(Customer.id, Customer.external_id))).all())
        activity = (await session.execute(select(CustomerDailyActivity))).scalars()
        states = (await session.execute(select(CustomerDailyState))).scalars()
        return (
            sorted((names[a.customer_id], a.name, a.day, a.count) for a in activity if a.tenant_id == tenant_id),
            sorted(
                (names[s.customer_id], s.day, s.status, s.plan, s.mrr, s.currency, s.cancel_at_period_end)
                for s in states
                if s.tenant_id == tenant_id
            ),
        )


async def features(db, tenant_id: uuid.UUID) -> list[tuple[Any, ...]]:
    async with db.tenant_session(tenant_id) as session:
        names = dict((await session.execute(select(Customer.id, Customer.external_id))).all())
        spec = await discover_spec(session, tenant_id, END)
        matrix = await feature_matrix(session, tenant_id, END, spec)
    rows = matrix.frame.astype(object).where(matrix.frame.notna(), None).itertuples(index=False)
    return sorted(
        (names[uuid.UUID(str(customer))], *row) for customer, row in zip(matrix.customer_ids, rows, strict=True)
    )


async def test_a_bulk_import_ends_as_the_events_api_does(
    client, db, tenant, other_tenant, history, tmp_path, monkeypatch
):
    monkeypatch.setattr("churnsaver.backend.ingest.imports.EVENT_BATCH_LINES", 97)
    path = write_history(tmp_path / "history.jsonl", history)

    report = await run_import(db, tenant.id, path)
    await send_through_the_api(client, db, other_tenant, history)

    assert (report.imported, report.duplicates, report.rejected, report.quarantined) == (len(history), 0, 0, 0)
    assert_same_state(await ingest_state(db, tenant.id), await ingest_state(db, other_tenant.id))
    assert await aggregates(db, tenant.id) == await aggregates(db, other_tenant.id)
    assert await features(db, tenant.id) == await features(db, other_tenant.id)


async def test_a_rerun_imports_nothing_new(db, tenant, history, tmp_path):
    path = write_history(tmp_path / "history.jsonl", history)
    await run_import(db, tenant.id, path)
    before = (await ingest_state(db, tenant.id), await aggregates(db, tenant.id))

    report = await run_import(db, tenant.id, path)

    assert (report.imported, report.duplicates) == (0, len(history))
    assert (await ingest_state(db, tenant.id), await aggregates(db, tenant.id)) == before


async def test_an_import_stopped_midway_and_run_again_completes_without_duplicates(
    db, tenant, other_tenant, history, tmp_path
):
    half = len(history) // 2
    await run_import(db, tenant.id, write_history(tmp_path / "first-half.jsonl", history[:half]))

    report = await run_import(db, tenant.id, write_history(tmp_path / "history.jsonl", history))
    await run_import(db, other_tenant.id, tmp_path / "history.jsonl")

    assert (report.imported, report.duplicates) == (len(history) - half, half)
    assert_same_state(await ingest_state(db, tenant.id), await ingest_state(db, other_tenant.id))
    assert await aggregates(db, tenant.id) == await aggregates(db, other_tenant.id)


def usage(message_id: str) -> str:
    item = {"type": "track", "messageId": message_id, "customerId": "cus_1", "event": "login"}
    return json.dumps(item | {"timestamp": "2025-02-01T00:00:00Z"}) + "\n"


async def test_a_line_the_store_refuses_is_quarantined_alone_with_its_reason(db, settings, tenant, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(usage("e1") + usage(REFUSED_MESSAGE) + usage("e3"), encoding="utf-8")

    async with store_refusing(db, settings):
        report = await run_import(db, tenant.id, path)

    assert (report.imported, report.quarantined) == (3, 1)
    async with db.tenant_session(tenant.id) as session:
        inbox = list((await session.execute(select(InboxEvent).where(InboxEvent.tenant_id == tenant.id))).scalars())
    assert [(row.external_id, row.status) for row in inbox] == [(REFUSED_MESSAGE, InboxStatus.quarantined)]
    assert "the store refuses this event" in (inbox[0].error or "")
    assert {key for _, _, _, _, key, _ in (await ingest_state(db, tenant.id)).timeline} == {"e1", "e3"}


async def test_lines_repeated_in_the_file_are_imported_once_the_first_one_winning(
    client, db, tenant, other_tenant, history, tmp_path, monkeypatch
):
    monkeypatch.setattr("churnsaver.backend.ingest.imports.EVENT_BATCH_LINES", 97)
    # A repeat right after its first line (the same chunk), and the same lines again at the end
    # (a later chunk); repeats say something else, which must not be applied.
    repeated = [item | {"timestamp": "2025-03-30T00:00:00+00:00"} for item in history[::10]]
    lines: list[dict[str, Any]] = []
    for index, item in enumerate(history):
        lines += [item, repeated[index // 10]] if index % 10 == 0 else [item]
    path = write_history(tmp_path / "history.jsonl", lines + repeated)

    report = await run_import(db, tenant.id, path)
    await send_through_the_api(client, db, other_tenant, history)

    assert (report.imported, report.duplicates, report.rejected) == (len(history), 2 * len(repeated), 0)
    assert_same_state(await ingest_state(db, tenant.id), await ingest_state(db, other_tenant.id))
    assert await aggregates(db, tenant.id) == await aggregates(db, other_tenant.id)


def identify(message_id: str, customer_id: str, email: str) -> str:
    item = {"type": "identify", "messageId": message_id, "customerId": customer_id, "traits": {"email": email}}
    return json.dumps(item | {"timestamp": "2025-02-01T00:00:00Z"}) + "\n"


async def test_a_refused_line_among_usage_and_state_lines_leaves_the_others_applied_and_counted(
    db, settings, tenant, tmp_path
):
    path = tmp_path / "events.jsonl"
    lines = [usage(f"e{n}") for n in range(5)] + [identify("i1", "cus_2", "two@example.com"), usage(REFUSED_MESSAGE)]
    path.write_text("".join(lines), encoding="utf-8")

    async with store_refusing(db, settings):
        report = await run_import(db, tenant.id, path)
        again = await run_import(db, tenant.id, path)

    assert (report.imported, report.quarantined, report.duplicates) == (7, 1, 0)
    assert (again.imported, again.duplicates) == (0, 7)
    activity, _ = await aggregates(db, tenant.id)
    assert [(customer, name, count) for customer, name, _day, count in activity] == [
        ("cus_1", "login", 5),
        ("cus_2", "identify", 1),
    ]
    assert ("cus_2", "two@example.com") in [(c[0], c[1]) for c in (await ingest_state(db, tenant.id)).customers]


async def queued_evaluations(db, tenant_id: uuid.UUID) -> set[str]:
    async with db.system_session() as session:
        statement = select(OutboxJob.kwargs).where(OutboxJob.actor_name == EVALUATE_CUSTOMERS)
        jobs = [kwargs for kwargs in (await session.execute(statement)).scalars()]
    return {customer for job in jobs if job["tenant_id"] == str(tenant_id) for customer in job["customer_ids"]}


async def cases_of(db, tenant_id: uuid.UUID) -> list[tuple]:
    async with db.tenant_session(tenant_id) as session:
        names = dict((await session.execute(select(Customer.id, Customer.external_id))).all())
        rows = (await session.execute(select(RecoveryCase))).scalars()
        return sorted((names[c.customer_id], c.kind, c.status, c.opened_at, c.resolved_at) for c in rows)


async def test_a_bulk_import_queues_the_case_evaluations_the_events_api_would(
    client, db, tenant, other_tenant, history, tmp_path
):
    path = write_history(tmp_path / "history.jsonl", history)

    await run_import(db, tenant.id, path)
    await send_through_the_api(client, db, other_tenant, history)
    imported, through_api = await queued_evaluations(db, tenant.id), await queued_evaluations(db, other_tenant.id)
    for tenant_id, customers in ((tenant.id, imported), (other_tenant.id, through_api)):
        await evaluate(db, tenant_id, [uuid.UUID(customer) for customer in customers], actor="test")

    async with db.tenant_session(tenant.id) as session:
        billed = set((await session.execute(select(Customer.id).where(Customer.tenant_id == tenant.id))).scalars())
    assert imported and {uuid.UUID(customer) for customer in imported} <= billed
    assert await cases_of(db, tenant.id) == await cases_of(db, other_tenant.id) != []
