"""Training rows: weekly snapshots labelled by the horizon after them, plus imported labels."""

import itertools
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from churnsaver.backend.customers.events import EventType
from churnsaver.backend.ingest.imports import CustomerColumns, import_customers
from churnsaver.backend.risk.features import MISSING_CATEGORY, discover_spec, feature_matrix
from churnsaver.backend.risk.snapshots import snapshot_dates, training_rows
from tests.risk.events import apply, billing, customer_ids, identify, usage

AS_OF = datetime(2026, 4, 1, tzinfo=UTC)
START = datetime(2026, 1, 1, 9, tzinfo=UTC)
CANCELED = datetime(2026, 2, 20, 15, tzinfo=UTC)
LATE_START = datetime(2026, 2, 26, 9, tzinfo=UTC)
HORIZON = 30


def history() -> list:
    active = {"status": "active", "plan": "pro", "mrr": 2000}
    events = []
    for customer, start in (("stays", START), ("leaves", START), ("late", LATE_START)):
        events.append(billing(customer, EventType.subscription_started, start, f"{customer}-start", active))
        events += [
            usage(customer, "login", start + timedelta(days=day), f"{customer}-login-{day}") for day in range(90)
        ]
    events.append(billing("leaves", EventType.subscription_canceled, CANCELED, "leaves-cancel", {"status": "canceled"}))
    return [event for event in events if event.occurred_at < AS_OF]


async def import_labelled(db, tenant_id, tmp_path: Path) -> None:
    rows = ["id,seats,region,churned"] + [
        f"imp{n},{n % 4},{'EU' if n % 2 else 'US'},{'yes' if n % 3 else 'no'}" for n in range(30)
    ]
    path = tmp_path / "labelled.csv"
    path.write_text("\n".join(rows) + "\n")
    await import_customers(db, tenant_id, path, CustomerColumns(id="id", label="churned"), on_progress=lambda _: None)


async def test_snapshots_label_churn_within_the_horizon_and_only_active_customers(db, tenant) -> None:
    await apply(db, tenant.id, history())
    ids = await customer_ids(db, tenant.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        training = await training_rows(session, tenant.id, AS_OF, HORIZON)

    dates = snapshot_dates(AS_OF, HORIZON, START.date(), 100)
    assert dates[-1] == AS_OF - timedelta(days=HORIZON) and all(t + timedelta(days=HORIZON) <= AS_OF for t in dates)
    assert all(later - earlier == timedelta(days=7) for earlier, later in itertools.pairwise(dates))
    assert dates[0].date() > START.date()  # the first has a day of history before it
    rows = list(zip(training.matrix.customer_ids, training.matrix.as_of, training.labels.tolist(), strict=True))
    expected = []
    for t in dates:
        expected.append((ids["stays"], t, False))
        if t < CANCELED:  # active (not yet canceled) at t
            expected.append((ids["leaves"], t, t + timedelta(days=HORIZON) >= CANCELED))
        if LATE_START.date() < t.date():  # seen before t
            expected.append((ids["late"], t, False))
    assert sorted(rows, key=str) == sorted(expected, key=str)
    assert training.summary["positives"] == sum(label for *_, label in expected) > 0
    assert training.summary["rows"] == len(expected) and training.summary["dates"] == len(dates)


async def test_the_same_history_gives_the_same_rows_in_the_same_order_whatever_the_arrival(
    db, tenant, other_tenant
) -> None:
    """CatBoost's model depends on its rows' order: it must follow the data, not internal ids."""
    events = history()
    await apply(db, tenant.id, events)
    for event in reversed(events):  # the customers are created in the opposite order
        await apply(db, other_tenant.id, [event])
    trained = []
    for tenant_id in (tenant.id, other_tenant.id):
        external = {customer_id: name for name, customer_id in (await customer_ids(db, tenant_id)).items()}
        async with db.tenant_session(tenant_id) as session:
            rows = await training_rows(session, tenant_id, AS_OF, HORIZON)
        matrix = rows.matrix
        keys = [(at, external[customer]) for customer, at in zip(matrix.customer_ids, matrix.as_of, strict=True)]
        trained.append((keys, rows.labels.tolist(), matrix.frame))

    (first_keys, first_labels, first_frame), (second_keys, second_labels, second_frame) = trained
    assert first_keys == sorted(first_keys) and len(set(name for _, name in first_keys)) == 3
    assert (first_keys, first_labels) == (second_keys, second_labels)
    assert first_frame.equals(second_frame)


async def test_the_newest_dates_are_held_out(db, tenant, tmp_path) -> None:
    await apply(db, tenant.id, history())
    await import_labelled(db, tenant.id, tmp_path)
    async with db.tenant_unit_of_work(tenant.id) as session:
        training = await training_rows(session, tenant.id, AS_OF, HORIZON)
        again = await training_rows(session, tenant.id, AS_OF, HORIZON)

    snapshot = training.summary["snapshot_rows"]
    dates = sorted(set(training.matrix.as_of[:snapshot]))
    held = sorted(
        {t for t, out in zip(training.matrix.as_of[:snapshot], training.holdout[:snapshot], strict=True) if out}
    )
    assert held == dates[-math.ceil(len(dates) * 0.2) :]
    assert 0.15 <= training.holdout[:snapshot].mean() <= 0.3
    imported = training.holdout[snapshot:]
    assert len(imported) == 30 == training.summary["imported_labelled"] and 0 < imported.sum() < 30
    assert np.array_equal(training.holdout, again.holdout)


async def test_imported_labelled_customers_bring_their_traits_and_labels_only(db, tenant, tmp_path) -> None:
    await import_labelled(db, tenant.id, tmp_path)
    async with db.tenant_unit_of_work(tenant.id) as session:
        training = await training_rows(session, tenant.id, AS_OF, HORIZON)
    ids = await customer_ids(db, tenant.id)
    by_id = dict(zip(training.matrix.customer_ids, training.labels.tolist(), strict=True))
    assert by_id == {ids[f"imp{n}"]: bool(n % 3) for n in range(30)}
    frame = training.matrix.frame
    assert frame["trait.seats"].notna().all() and set(frame["trait.region"]) == {"EU", "US"}
    assert frame["tenure_days"].isna().all() and (frame["subscription_status"] == "(missing)").all()
    assert "trait.churned" not in frame.columns  # the label never becomes a feature


async def test_events_after_a_snapshot_never_change_its_features_or_label(db, tenant) -> None:
    await apply(db, tenant.id, history())
    async with db.tenant_unit_of_work(tenant.id) as session:
        spec = await discover_spec(session, tenant.id, AS_OF)
        before = await training_rows(session, tenant.id, AS_OF, HORIZON, spec=spec)
    newest = max(before.matrix.as_of)
    after_snapshots = [usage("stays", "login", newest + timedelta(hours=h), f"after-{h}") for h in range(1, 200, 7)] + [
        billing("late", EventType.payment_failed, newest + timedelta(days=40), "after-failure")
    ]
    await apply(db, tenant.id, after_snapshots)
    async with db.tenant_unit_of_work(tenant.id) as session:
        after = await training_rows(session, tenant.id, AS_OF, HORIZON, spec=spec)
        direct = await feature_matrix(session, tenant.id, newest, spec)
    assert after.matrix.frame.equals(before.matrix.frame)
    assert np.array_equal(after.labels, before.labels)
    newest_rows = [index for index, t in enumerate(before.matrix.as_of) if t == newest]
    direct_rows = direct.frame.set_index(np.array(direct.customer_ids, dtype=object))
    picked = direct_rows.loc[[before.matrix.customer_ids[index] for index in newest_rows]].reset_index(drop=True)
    assert picked.equals(before.matrix.frame.iloc[newest_rows].reset_index(drop=True))


async def test_a_tenant_without_history_has_no_rows(db, tenant) -> None:
    async with db.tenant_unit_of_work(tenant.id) as session:
        training = await training_rows(session, tenant.id, AS_OF, HORIZON)
        with pytest.raises(ValueError):
            await training_rows(session, tenant.id, AS_OF, 0)
    assert training.summary["rows"] == 0 and len(training.matrix.frame) == 0 and len(training.labels) == 0


async def test_traits_set_after_a_snapshot_do_not_reach_it(db, tenant) -> None:
    early, late = START + timedelta(days=1), AS_OF - timedelta(days=5)
    await apply(db, tenant.id, history())
    await apply(db, tenant.id, [identify("stays", early, "id-early", tier="basic", seats=2)])
    # After every snapshot date: a changed tier and a new trait that names the outcome.
    await apply(db, tenant.id, [identify("stays", late, "id-late", tier="enterprise", seats=9, reason="price")])
    ids = await customer_ids(db, tenant.id)
    async with db.tenant_unit_of_work(tenant.id) as session:
        training = await training_rows(session, tenant.id, AS_OF, HORIZON)
        now = await feature_matrix(session, tenant.id, AS_OF, training.matrix.spec, [ids["stays"]])
    rows = [index for index, customer in enumerate(training.matrix.customer_ids) if customer == ids["stays"]]
    assert all(training.matrix.as_of[index] > early for index in rows)
    frame = training.matrix.frame.iloc[rows]
    assert len(rows) > 3
    assert set(frame["trait.tier"]) == {"basic"} and set(frame["trait.seats"]) == {2.0}
    assert set(frame["trait.reason"]) == {MISSING_CATEGORY}
    assert now.frame.iloc[0]["trait.tier"] == "enterprise" and now.frame.iloc[0]["trait.reason"] == "price"


async def test_another_tenants_churn_never_labels_this_tenants_rows(db, tenant, other_tenant) -> None:
    await apply(db, tenant.id, history())
    cancel_all = [
        billing(name, EventType.subscription_canceled, START + timedelta(days=20), f"x-{name}", {"status": "canceled"})
        for name in ("stays", "late")
    ]
    await apply(db, other_tenant.id, history() + cancel_all)
    async with db.tenant_unit_of_work(tenant.id) as session:
        mine = await training_rows(session, tenant.id, AS_OF, HORIZON)
    async with db.tenant_unit_of_work(other_tenant.id) as session:
        theirs = await training_rows(session, other_tenant.id, AS_OF, HORIZON)
    ids = await customer_ids(db, tenant.id)
    stays = [
        label for customer, label in zip(mine.matrix.customer_ids, mine.labels, strict=True) if customer == ids["stays"]
    ]
    assert stays and not any(stays)
    assert set(mine.matrix.customer_ids) == set(ids.values())
    assert not set(theirs.matrix.customer_ids) & set(ids.values())
    assert theirs.summary["positives"] > mine.summary["positives"]
