"""`churnsaver import customers|events`, run as a real subprocess against the test database."""

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import run_cli
from tests.ingest.test_imports import TELCO_COLUMNS, event_line, telco_rows, write_csv, write_jsonl


@pytest.fixture
def slug(tenant) -> str:
    return tenant.tenant.slug


def import_json(settings, *args: str) -> dict:
    result = run_cli(settings, "import", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_customers_csv_imports_with_typed_traits_and_reruns_without_duplicates(settings, slug, tmp_path):
    path = write_csv(tmp_path / "telco.csv", TELCO_COLUMNS, telco_rows(120))

    first = import_json(settings, "customers", str(path), "--tenant", slug, "--label-column", "Churn")
    again = import_json(settings, "customers", str(path), "--tenant", slug, "--label-column", "Churn")

    assert (first["imported"], first["updated"], first["rejected"]) == (120, 0, [])
    assert first["columns"]["TotalCharges"] == "number"
    assert first["columns"]["Partner"] == "boolean"
    assert "Churn" not in first["columns"]
    assert (again["imported"], again["updated"], again["rejected_count"]) == (0, 120, 0)


def test_rejected_rows_are_listed_with_line_numbers(settings, slug, tmp_path):
    path = tmp_path / "crm.csv"
    path.write_text("id,plan,churned\nc1,pro,yes\nc2,basic,perhaps\nc3,team\n", encoding="utf-8")

    payload = import_json(settings, "customers", str(path), "--tenant", slug, "--label-column", "churned")
    text = run_cli(settings, "import", "customers", str(path), "--tenant", slug, "--label-column", "churned")

    assert payload["imported"] == 1
    assert payload["rejected"] == [
        {"line": 3, "reason": "churn label 'perhaps' is not yes/no, true/false, 1/0 or churned/active"},
        {"line": 4, "reason": "2 fields where the header has 3"},
    ]
    assert text.returncode == 0, text.stderr
    assert "customers: 0 new, 1 updated, 2 rows rejected" in text.stdout
    assert "line 3: churn label 'perhaps'" in text.stdout
    assert "plan (text)" in text.stdout


def test_an_events_file_imports_once_and_reports_bad_lines(settings, slug, tmp_path):
    path = write_jsonl(tmp_path / "events.jsonl", [event_line("e1"), "{oops", event_line("e3", customer_id="cus_2")])

    first = import_json(settings, "events", str(path), "--tenant", slug)
    again = import_json(settings, "events", str(path), "--tenant", slug)

    assert (first["imported"], first["duplicates"]) == (2, 0)
    [rejection] = first["rejected"]
    assert rejection["line"] == 2 and rejection["reason"].startswith("malformed JSON: Expecting property name")
    assert (again["imported"], again["duplicates"]) == (0, 2)


def test_a_churn_date_outside_years_1_to_9999_is_a_rejected_row_not_a_traceback(settings, slug, tmp_path):
    path = tmp_path / "crm.csv"
    path.write_text("id,left_on\nc1,2024-05-31\nc2,0001-01-01T00:00:00+01:00\n", encoding="utf-8")

    result = run_cli(settings, "import", "customers", str(path), "--tenant", slug, "--churn-date-column", "left_on")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "customers: 1 new, 0 updated, 1 rows rejected" in result.stdout
    assert "line 3: churn date: '0001-01-01T00:00:00+01:00' falls outside years 1 to 9999 in UTC" in result.stdout


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (event_line("e2", timestamp="0001-01-01T00:00:00+01:00"), "timestamp: '0001-01-01T00:00:00+01:00' falls"),
        (event_line("e2", properties={"note": "\ud800"}), "properties.note: lone surrogates"),
        (event_line("e2", properties={"v": 10**400, "w": 10**30}).replace("1" + "0" * 400, "1e400"), "properties.v: "),
    ],
    ids=["timestamp", "surrogate", "infinity"],
)
def test_an_events_line_no_store_can_hold_is_a_rejected_line_not_a_traceback(settings, slug, tmp_path, line, reason):
    path = write_jsonl(tmp_path / "events.jsonl", [event_line("e1"), line, event_line("e3")])

    result = run_cli(settings, "import", "events", str(path), "--tenant", slug)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "events: 2 new, 0 already imported, 1 lines rejected" in result.stdout
    assert f"line 2: {reason}" in result.stdout


@pytest.mark.parametrize("command", ["customers", "events"])
def test_a_missing_file_is_one_clear_line(settings, slug, tmp_path, command):
    missing = tmp_path / "nowhere.csv"

    result = run_cli(settings, "import", command, str(missing), "--tenant", slug)

    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {missing}: no such file"


def test_an_unknown_tenant_is_one_clear_line(settings, tmp_path):
    path = write_csv(tmp_path / "c.csv", ["id"], [["c1"]])

    result = run_cli(settings, "import", "customers", str(path), "--tenant", "no-such-tenant")

    assert result.returncode == 1
    assert result.stderr.strip() == "error: tenant 'no-such-tenant' not found"


@pytest.mark.parametrize(
    ("content", "flags", "message"),
    [
        (b"name,plan\nAda,pro\n", (), "no id column"),
        (b"id,plan\nc1,pro\n", ("--label-column", "Churn"), "--label-column: no column 'Churn'"),
        (b"id,plan\nc1,caf\xe9\n", (), "line 2: not UTF-8 text"),
    ],
)
def test_an_unreadable_csv_is_one_clear_line(settings, slug, tmp_path: Path, content, flags, message):
    path = tmp_path / "broken.csv"
    path.write_bytes(content)

    result = run_cli(settings, "import", "customers", str(path), "--tenant", slug, *flags)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_an_events_import_at_a_terminal_shows_events_a_second_on_stderr(settings, slug, tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich draws its bar as at a terminal
    monkeypatch.setenv("COLUMNS", "160")
    path = write_jsonl(tmp_path / "events.jsonl", [event_line(f"e{n}") for n in range(40)])

    result = run_cli(settings, "import", "events", str(path), "--tenant", slug)

    assert result.returncode == 0, result.stderr
    assert "events: 40 new" in result.stdout
    assert "40 events" in result.stderr and "/s" in result.stderr
    assert "/s" not in result.stdout
