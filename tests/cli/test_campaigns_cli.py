"""`churnsaver campaigns list`: a tenant's campaigns with their counts, as a table or JSON, and
only that tenant's."""

import json

from tests.cli.test_cli import run_cli
from tests.fixtures.campaigns import add_campaign, enroll, open_failed_payment


async def test_campaigns_list_shows_the_defaults_and_the_tenants_own_with_counts(settings, db, tenant, other_tenant):
    step = {"delay": "PT0S", "channel": "email", "template": "winback"}
    await add_campaign(
        db, tenant.id, name="Ours", case_kinds=["payment_failed"], variants=[{"name": "a", "steps": [step]}]
    )
    await add_campaign(
        db, other_tenant.id, name="Theirs", case_kinds=["canceled"], variants=[{"name": "a", "steps": [step]}]
    )
    await open_failed_payment(db, tenant.id, "user_a")
    await enroll(db, tenant.id)

    result = run_cli(settings, "campaigns", "list", "--tenant", tenant.tenant.slug, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    names = [row["name"] for row in rows]
    assert "Ours" in names and "Theirs" not in names and len(rows) == 8
    ours = next(row for row in rows if row["name"] == "Ours")
    assert ours["stats"] == {"enrolled": 1, "held_out": 0, "steps": {"pending": 1}}
    assert ours["variants"][0]["steps"][0]["template"] == "winback"

    table = run_cli(settings, "campaigns", "list", "--tenant", tenant.tenant.slug)
    assert table.returncode == 0 and "Ours" in table.stdout and "Theirs" not in table.stdout


def test_an_unknown_tenant_is_a_clear_error(settings):
    result = run_cli(settings, "campaigns", "list", "--tenant", "no-such-tenant")
    assert result.returncode != 0 and "Traceback" not in result.stderr
