"""The synthetic data generator: deterministic, realistic in the ways the risk engine relies on,
loadable through the real ingest code, and its CRM export importable through the real CLI."""

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from churnsaver.backend.core.config import Settings
from churnsaver.backend.customers.apply import check_event
from churnsaver.backend.customers.declines import classify_decline
from churnsaver.backend.customers.events import DeclineClass
from churnsaver.backend.customers.models import Customer, CustomerEvent, Subscription
from churnsaver.backend.ingest.events_api import normalize_item
from churnsaver.backend.synthetic import ChurnCause, SyntheticDataset, crm_export_csv, generate, load_dataset
from churnsaver.backend.synthetic.crm_export import CHURN_DATE_COLUMN, LABEL_COLUMN
from churnsaver.backend.synthetic.generator import HARD_DECLINES, SOFT_DECLINES, USAGE_EVENTS
from tests.cli.test_cli import run_cli

START = datetime(2025, 1, 6, tzinfo=UTC)
END = datetime(2025, 10, 6, tzinfo=UTC)
FOUR_WEEKS = timedelta(weeks=4)


@pytest.fixture(scope="module")
def large() -> SyntheticDataset:
    return generate(seed=11, customers=1500, start=START, end=END)


def usage_times(dataset: SyntheticDataset) -> dict[str, list[datetime]]:
    times: dict[str, list[datetime]] = defaultdict(list)
    for item in dataset.items:
        if item.get("event") in USAGE_EVENTS:
            times[item["customerId"]].append(datetime.fromisoformat(item["timestamp"]))
    return times


def usage_ratio(times: dict[str, list[datetime]], ends: dict[str, datetime]) -> float:
    """Usage in the four weeks before each customer's end, over usage in the four weeks before those."""
    last = before = 0
    for customer_id, end in ends.items():
        last += sum(end - FOUR_WEEKS <= at < end for at in times[customer_id])
        before += sum(end - 2 * FOUR_WEEKS <= at < end - FOUR_WEEKS for at in times[customer_id])
    return last / before


def test_the_same_seed_gives_the_same_dataset_and_a_larger_one_extends_it():
    first = generate(seed=5, customers=40, start=START, end=END)
    again = generate(seed=5, customers=40, start=START, end=END)
    larger = generate(seed=5, customers=60, start=START, end=END)
    other = generate(seed=6, customers=40, start=START, end=END)

    assert first.items == again.items and first.truth == again.truth
    assert other.items != first.items
    assert {key: larger.truth[key] for key in first.truth} == first.truth
    first_ids = set(first.truth)
    assert [item for item in larger.items if item["customerId"] in first_ids] == first.items


def test_monthly_churn_is_between_3_and_8_percent_with_every_cause(large):
    exposure_months = 0.0
    for truth in large.truth.values():
        active_from = max(truth.signed_up_at, large.start)
        exposure_months += ((truth.churned_at or large.end) - active_from).days / 30.44

    assert 0.03 <= len(large.churned) / exposure_months <= 0.08
    assert {truth.cause for truth in large.churned} == set(ChurnCause)
    assert all(large.start <= truth.churned_at < large.end for truth in large.churned)


def test_churners_usage_fades_in_their_last_four_weeks_and_other_customers_does_not(large):
    times = usage_times(large)
    settled = {
        customer_id: truth
        for customer_id, truth in large.truth.items()
        if truth.signed_up_at < (truth.churned_at or large.end) - 2 * FOUR_WEEKS
        and (truth.churned_at or large.end) - 2 * FOUR_WEEKS >= large.start
    }
    decayed = {key: truth.churned_at for key, truth in settled.items() if truth.cause is ChurnCause.usage_decay}
    churners = {key: truth.churned_at for key, truth in settled.items() if truth.churned_at}
    stayers = {key: large.end for key, truth in settled.items() if truth.churned_at is None}

    assert len(decayed) > 100 and len(stayers) > 300
    assert usage_ratio(times, decayed) < 0.55
    assert usage_ratio(times, churners) < 0.8
    assert usage_ratio(times, stayers) > 0.9


def test_every_item_is_accepted_by_the_events_api_and_declines_are_soft_and_hard():
    dataset = generate(seed=12, customers=400, start=START, end=END)
    events = [event for item in dataset.items for event in normalize_item(item)]
    for event in events:
        check_event(event)

    classes = {event.properties["decline_class"] for event in events if event.type == "payment_failed"}
    assert classes == {"soft", "hard"}
    assert {classify_decline(code) for code in SOFT_DECLINES} == {DeclineClass.soft}
    assert {classify_decline(code) for code in HARD_DECLINES} == {DeclineClass.hard}
    outcomes = decline_outcomes(events)
    # Soft declines pass on retry; hard ones end the subscription unless a new card saves it.
    assert outcomes["soft"]["payment_succeeded"] > 0.9 * sum(outcomes["soft"].values())
    assert outcomes["hard"]["subscription_canceled"] > outcomes["hard"]["payment_succeeded"] > 0
    assert [item["timestamp"] for item in dataset.items] == sorted(item["timestamp"] for item in dataset.items)


def decline_outcomes(events) -> dict[str, dict[str, int]]:
    """Per decline class, what the customer's next billing event after the decline's last retry was."""
    outcomes: dict[str, dict[str, int]] = {"soft": defaultdict(int), "hard": defaultdict(int)}
    pending: dict[str, str] = {}
    for event in events:
        customer_id = event.customer.provider_id
        if event.type == "payment_failed":
            pending[customer_id] = event.properties["decline_class"]
        elif event.type in ("payment_succeeded", "subscription_canceled") and customer_id in pending:
            outcomes[pending.pop(customer_id)][event.type] += 1
    return outcomes


async def test_a_loaded_dataset_has_its_customers_and_cancels_exactly_the_churned(db, tenant, other_tenant):
    dataset = generate(seed=3, customers=120, start=START, end=START + timedelta(days=180))

    report = await load_dataset(db, tenant.id, dataset)
    again = await load_dataset(db, tenant.id, dataset)

    assert report.customers_created == 120 and report.applied == len(dataset.items)
    assert again.applied == 0 and again.customers_created == 0
    async with db.tenant_session(tenant.id) as session:
        own_customers = select(Customer.id, Customer.external_id).where(Customer.tenant_id == tenant.id)
        customers = dict((await session.execute(own_customers)).all())
        subscriptions = select(Subscription.customer_id, Subscription.status).where(Subscription.tenant_id == tenant.id)
        statuses = {customers[customer_id]: status for customer_id, status in await session.execute(subscriptions)}
        failed = select(CustomerEvent.properties).where(
            CustomerEvent.tenant_id == tenant.id, CustomerEvent.type == "payment_failed"
        )
        decline_classes = {properties["decline_class"] for properties in (await session.execute(failed)).scalars()}
    assert set(customers.values()) == set(dataset.truth)
    canceled = {customer_id for customer_id, status in statuses.items() if status == "canceled"}
    assert canceled == {truth.customer_id for truth in dataset.churned}
    assert set(statuses.values()) <= {"active", "canceled", "paused"}
    assert decline_classes == {"soft", "hard"}
    async with db.tenant_session(other_tenant.id) as session:
        assert (await session.execute(select(Customer.id).where(Customer.tenant_id == other_tenant.id))).first() is None


def test_the_crm_export_imports_through_the_cli_rejecting_only_its_bad_rows(settings, tenant, tmp_path):
    export = crm_export_csv(tmp_path / "crm.csv", seed=2, rows=400, bad_rows=4)

    result = run_cli(
        settings,
        *("import", "customers", str(export.path), "--tenant", tenant.tenant.slug),
        *("--label-column", LABEL_COLUMN, "--churn-date-column", CHURN_DATE_COLUMN, "--json"),
    )

    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["imported"] == export.rows
    assert [rejection["line"] for rejection in payload["rejected"]] == export.bad_lines
    assert 0.1 < export.churned / export.rows < 0.5
    columns = payload["columns"]
    assert (columns["monthly_fee"], columns["tenure_months"], columns["seats"]) == ("number", "integer", "text")
    assert (columns["auto_renew"], columns["signup_date"]) == ("boolean", "date")
    assert LABEL_COLUMN not in columns and CHURN_DATE_COLUMN not in columns


def test_synthetic_events_from_the_cli_import_as_they_are(settings, tenant, tmp_path):
    path = tmp_path / "events.jsonl"

    written = run_cli(settings, "synthetic", "events", "--customers", "15", "--seed", "4", "--output", str(path))
    imported = run_cli(settings, "import", "events", str(path), "--tenant", tenant.tenant.slug, "--json")

    assert written.returncode == 0, written.stderr
    lines = path.read_text().splitlines()
    assert imported.returncode == 0, imported.stderr
    payload = json.loads(imported.stdout)
    assert (payload["imported"], payload["rejected"]) == (len(lines), [])
    assert {json.loads(line)["customerId"] for line in lines} == {f"syn_{index:06d}" for index in range(15)}


@pytest.mark.parametrize("command", ["events", "customers-csv"])
def test_an_unwritable_output_is_one_clear_line(tmp_path, command):
    output = tmp_path / "missing" / "out.txt"

    # Writing files needs no database: run once, whatever the backends.
    result = run_cli(Settings(env="test", data_dir=tmp_path), "synthetic", command, "--output", str(output))

    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {output}: No such file or directory"
