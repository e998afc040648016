"""`churnsaver cases list`: a tenant's cases by priority, filtered, as a table or JSON."""

import json
from datetime import timedelta

from churnsaver.backend.core.db import utcnow
from tests.cli.test_cli import run_cli
from tests.fixtures import billing_payloads as payloads
from tests.fixtures.cases import apply_and_reconcile

NOW = utcnow().replace(microsecond=0)


async def seed(db, tenant_id) -> None:
    for customer, amount, ended in (("cus_A", 1000, False), ("cus_B", 9000, False), ("cus_C", 5000, True)):
        sub = f"sub_{customer}"
        events = [
            payloads.stripe_subscription_event(
                "customer.subscription.created", customer_id=customer, subscription_id=sub, at=NOW - timedelta(days=40)
            ),
            payloads.stripe_invoice_payment_failed(
                customer_id=customer, subscription_id=sub, at=NOW - timedelta(days=2), amount_due=amount
            ),
        ]
        if ended:
            events.append(
                payloads.stripe_subscription_event(
                    "customer.subscription.deleted",
                    customer_id=customer,
                    subscription_id=sub,
                    at=NOW - timedelta(days=1),
                    status="canceled",
                )
            )
        await apply_and_reconcile(db, tenant_id, *events)


async def test_cases_list_filters_and_sorts_by_priority(settings, db, tenant) -> None:
    await seed(db, tenant.id)
    slug = tenant.tenant.slug
    result = run_cli(
        settings, "cases", "list", "--tenant", slug, "--status", "open", "--kind", "payment_failed", "--json"
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["customer"]["external_id"], r["revenue_at_risk"]["amount"]) for r in rows] == [
        ("cus_B", 9000),
        ("cus_A", 1000),
    ]
    assert all(r["overdue"] for r in rows)
    everything = json.loads(run_cli(settings, "cases", "list", "--tenant", slug, "--json").stdout)
    assert {(r["kind"], r["status"]) for r in everything} == {
        ("payment_failed", "open"),
        ("payment_failed", "lost"),
        ("canceled", "open"),
    }
    table = run_cli(settings, "cases", "list", "--tenant", slug, "--kind", "CANCELED")
    assert table.returncode == 0 and "cus_C" in table.stdout and "cus_A" not in table.stdout


async def test_bad_options_give_one_line_not_a_traceback(settings, tenant) -> None:
    result = run_cli(settings, "cases", "list", "--tenant", tenant.tenant.slug, "--status", "pending")
    assert result.returncode == 1
    assert "--status: 'pending' is not one of dismissed, lost, open, recovered" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_cli(settings, "cases", "list", "--tenant", "no-such-tenant")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
