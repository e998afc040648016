"""`churnsaver score` and `churnsaver scores export`, run as real subprocesses."""

import csv
import json
import re
from datetime import timedelta
from pathlib import Path

from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.risk.scoring import score_tenant
from tests.cli.test_cli import run_cli
from tests.fixtures.factories import TenantWithKey
from tests.fixtures.risk_activity import seed_two_customers, stored


async def test_score_scores_every_customer_and_export_writes_their_own_ids(
    settings, db: Database, tenant: TenantWithKey, other_tenant: TenantWithKey, tmp_path: Path
):
    await seed_two_customers(db, tenant.id)
    await seed_two_customers(db, other_tenant.id)
    as_of = (utcnow() - timedelta(hours=1)).replace(microsecond=0)

    result = run_cli(settings, "score", "--tenant", tenant.tenant.slug, "--as-of", as_of.isoformat(), "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["scored"], report["model_version"], report["tiers"]) == (
        2,
        "rules",
        {"critical": 1, "high": 0, "medium": 0, "low": 1},
    )
    current, _, _ = await stored(db, tenant.id)
    assert {row.as_of for row in current.values()} == {as_of}
    assert await stored(db, other_tenant.id) == ({}, [], [])
    await score_tenant(db, other_tenant.id)  # same external ids, scored too: none may leak into the export

    output = tmp_path / "scores.csv"
    result = run_cli(settings, "scores", "export", "--tenant", tenant.tenant.slug, "--output", str(output))

    assert result.returncode == 0, result.stderr
    with output.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["customer_id", "score", "tier", "model_version", "reasons", "status", "churned_at"]
    assert [(row["customer_id"], row["score"], row["tier"], row["model_version"]) for row in rows] == [
        ("risky", "0.7500", "critical", "rules"),
        ("healthy", "0.1000", "low", "rules"),
    ]
    failures, idle, drop = rows[0]["reasons"].split("; ")
    assert (failures, drop) == ("2 payment failures in 30 days (+0.30)", "0 active days in 30 days (+0.10)")
    assert re.fullmatch(r"No activity in 4[01] days \(\+0\.25\)", idle)  # 40 days, 41 past midnight UTC


def test_score_with_an_unknown_tenant_or_a_bad_as_of_fails_in_one_line(settings, tenant: TenantWithKey):
    cases = [
        (["score", "--tenant", "no-such-tenant"], "tenant 'no-such-tenant' not found"),
        (["score", "--tenant", tenant.tenant.slug, "--as-of", "yesterday"], "is not an ISO 8601 time"),
        (["score", "--tenant", tenant.tenant.slug, "--as-of", "2999-01-01"], "is in the future"),
        (["scores", "export", "--tenant", "no-such-tenant", "--output", "x.csv"], "tenant 'no-such-tenant' not found"),
    ]
    for arguments, message in cases:
        result = run_cli(settings, *arguments)
        assert result.returncode == 1, (arguments, result.stdout, result.stderr)
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_export_to_an_unwritable_file_fails_in_one_line(settings, tenant: TenantWithKey, tmp_path: Path):
    output = tmp_path / "missing-directory" / "scores.csv"

    result = run_cli(settings, "scores", "export", "--tenant", tenant.tenant.slug, "--output", str(output))

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {output}: cannot write (No such file or directory)"]
