"""`churnsaver messages list`: a tenant's messages newest first, by case, as a table or JSON; never
another tenant's; bad options in one line."""

import json
import uuid

from churnsaver.backend.channels.delivery import deliver
from tests.cli.test_cli import run_cli
from tests.fixtures.cases import open_payment_failed_case
from tests.fixtures.channels import schedule
from tests.fixtures.factories import create_customer


async def test_messages_list_shows_the_tenants_messages_and_those_of_a_case(settings, db, tenant, other_tenant) -> None:
    case = await open_payment_failed_case(db, tenant.id, "user_A")
    sent = await schedule(db, tenant.id, case.customer_id, case_id=case.id)
    await deliver(db, settings, tenant.id, sent.message_id)
    other = await create_customer(db, tenant.id, "cus_B", email=None)
    await schedule(db, tenant.id, other.id)
    stranger = await create_customer(db, other_tenant.id, "cus_X", email="x@example.com")
    await schedule(db, other_tenant.id, stranger.id)
    slug = tenant.tenant.slug

    everything = run_cli(settings, "messages", "list", "--tenant", slug, "--json")
    assert everything.returncode == 0, everything.stderr
    rows = json.loads(everything.stdout)
    assert [(r["customer"]["external_id"], r["status"]) for r in rows] == [("cus_B", "suppressed"), ("user_A", "sent")]
    assert rows[0]["reason"] == "the customer has no valid email address" and rows[1]["captured"] is True

    of_case = json.loads(
        run_cli(settings, "messages", "list", "--tenant", slug, "--case", str(case.id), "--json").stdout
    )
    assert [r["id"] for r in of_case] == [str(sent.message_id)]
    table = run_cli(settings, "messages", "list", "--tenant", slug)
    assert table.returncode == 0 and "user_A" in table.stdout and "(captured)" in table.stdout
    assert "cus_X" not in table.stdout
    # Another tenant's case is not found, never listed.
    theirs = run_cli(settings, "messages", "list", "--tenant", other_tenant.tenant.slug, "--case", str(case.id))
    assert theirs.returncode == 1 and "has no case" in theirs.stderr and "user_A" not in theirs.stdout


async def test_bad_options_give_one_line_not_a_traceback(settings, tenant) -> None:
    bad_case = run_cli(settings, "messages", "list", "--tenant", tenant.tenant.slug, "--case", "12")
    assert bad_case.returncode == 1 and "--case: '12' is not a case id" in bad_case.stderr
    unknown = run_cli(settings, "messages", "list", "--tenant", tenant.tenant.slug, "--case", str(uuid.uuid4()))
    assert unknown.returncode == 1 and "has no case" in unknown.stderr
    missing = run_cli(settings, "messages", "list", "--tenant", "no-such-tenant")
    assert missing.returncode == 1
    for result in (bad_case, unknown, missing):
        assert "Traceback" not in result.stderr
