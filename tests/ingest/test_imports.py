"""Imports: a customers CSV becomes customers with typed traits and churn labels, an events JSONL
file becomes processed events; both stream, report bad rows by line, and re-run without duplicates."""

import csv
import json
import random
import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from churnsaver.backend.cli.imports import _import_customers as cli_import_customers
from churnsaver.backend.core.sqlite_writer import SWITCH_INTERVAL_SECONDS
from churnsaver.backend.customers.events import Source
from churnsaver.backend.customers.models import Customer, CustomerEvent, CustomerIdentity
from churnsaver.backend.ingest.imports import (
    CUSTOMER_BATCH_ROWS,
    TYPE_SAMPLE_ROWS,
    CustomerColumns,
    UnreadableFile,
    import_customers,
    import_events,
)
from churnsaver.backend.ingest.models import InboxEvent
from tests.fixtures.factories import create_customers
from tests.fixtures.ingest_state import ingest_counters

TELCO_COLUMNS = [
    "customerID",
    "gender",
    "SeniorCitizen",
    "Partner",
    "tenure",
    "MonthlyCharges",
    "TotalCharges",
    "Contract",
    "SignupDate",
    "Churn",
]
TELCO = CustomerColumns(label="Churn")


def telco_rows(count: int, *, seed: int = 7) -> list[list[str]]:
    """A telco churn export as such files come: numbers as text, blank TotalCharges for new customers."""
    rng = random.Random(seed)
    rows = []
    for number in range(count):
        tenure = 0 if number % 11 == 0 else rng.randint(1, 72)  # every 11th signed up this month
        monthly = round(rng.uniform(18.25, 118.75), 2)
        rows.append(
            [
                f"{number:04d}-{rng.choice('ABCDEFGH')}{rng.choice('KLMNOPQR')}",
                rng.choice(["Male", "Female"]),
                rng.choice(["0", "1"]),
                rng.choice(["Yes", "No"]),
                str(tenure),
                f"{monthly:.2f}",
                " " if tenure == 0 else f"{monthly * tenure:.2f}",
                rng.choice(["Month-to-month", "One year", "Two year"]),
                f"20{rng.randint(18, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                rng.choice(["Yes", "No"]),
            ]
        )
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


DEFAULT_COLUMNS = CustomerColumns()


async def run_customers(db, tenant_id, path: Path, columns: CustomerColumns = DEFAULT_COLUMNS):
    return await import_customers(db, tenant_id, path, columns, on_progress=lambda _done: None)


async def customers_of(db, tenant_id: uuid.UUID) -> dict[str, Customer]:
    async with db.tenant_session(tenant_id) as session:
        statement = select(Customer).where(Customer.tenant_id == tenant_id)
        return {customer.external_id: customer for customer in (await session.execute(statement)).scalars()}


async def identities_of(db, tenant_id: uuid.UUID) -> set[tuple[str, str, uuid.UUID]]:
    async with db.tenant_session(tenant_id) as session:
        statement = select(CustomerIdentity).where(CustomerIdentity.tenant_id == tenant_id)
        return {(i.provider, i.provider_id, i.customer_id) for i in (await session.execute(statement)).scalars()}


# --- customers ---------------------------------------------------------------------------------


async def test_a_telco_export_becomes_customers_with_typed_traits(db, tenant, tmp_path):
    rows = telco_rows(300)
    path = write_csv(tmp_path / "telco.csv", TELCO_COLUMNS, rows)

    report = await run_customers(db, tenant.id, path, TELCO)

    assert (report.imported, report.updated, report.rejected) == (300, 0, 0)
    assert report.columns == {
        "gender": "text",
        "SeniorCitizen": "integer",
        "Partner": "boolean",
        "tenure": "integer",
        "MonthlyCharges": "number",
        "TotalCharges": "number",
        "Contract": "text",
        "SignupDate": "date",
    }
    customers = await customers_of(db, tenant.id)
    assert len(customers) == 300
    first = customers[rows[0][0]]
    assert first.traits == {
        "gender": rows[0][1],
        "SeniorCitizen": int(rows[0][2]),
        "Partner": rows[0][3] == "Yes",
        "tenure": int(rows[0][4]),
        "MonthlyCharges": float(rows[0][5]),
        **({"TotalCharges": float(rows[0][6])} if rows[0][6].strip() else {}),
        "Contract": rows[0][7],
        "SignupDate": rows[0][8],
    }
    assert first.churn_label is (rows[0][9] == "Yes")


async def test_blank_numeric_cells_are_missing_traits_not_zero_or_text(db, tenant, tmp_path):
    rows = telco_rows(300)
    path = write_csv(tmp_path / "telco.csv", TELCO_COLUMNS, rows)

    await run_customers(db, tenant.id, path, TELCO)

    customers = await customers_of(db, tenant.id)
    new_customers = [customers[row[0]] for row in rows if row[4] == "0"]
    assert new_customers, "the generated export has customers with no tenure yet"
    assert all("TotalCharges" not in customer.traits for customer in new_customers)
    assert all(isinstance(customer.traits.get("TotalCharges", 0.0), float) for customer in customers.values())


async def test_the_label_and_id_columns_are_not_traits(db, tenant, tmp_path):
    path = write_csv(tmp_path / "telco.csv", TELCO_COLUMNS, telco_rows(20))

    await run_customers(db, tenant.id, path, TELCO)

    for customer in (await customers_of(db, tenant.id)).values():
        assert "Churn" not in customer.traits
        assert "customerID" not in customer.traits


@pytest.mark.parametrize(
    ("cell", "label"),
    [
        ("Yes", True),
        ("no", False),
        ("TRUE", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("churned", True),
        ("Active", False),
        ("", None),
    ],
)
async def test_churn_labels_in_the_usual_spellings(db, tenant, tmp_path, cell, label):
    path = write_csv(tmp_path / "labels.csv", ["id", "plan", "churned"], [["c1", "pro", cell]])

    await run_customers(db, tenant.id, path, CustomerColumns(label="churned"))

    assert (await customers_of(db, tenant.id))["c1"].churn_label is label


async def test_a_churn_date_is_stored_and_implies_the_label(db, tenant, tmp_path):
    rows = [["c1", "2024-05-31", ""], ["c2", "2024-06-01T10:30:00+02:00", "yes"], ["c3", "", "no"]]
    path = write_csv(tmp_path / "dates.csv", ["id", "left_on", "churn"], rows)

    await run_customers(db, tenant.id, path, CustomerColumns(label="churn", churn_date="left_on"))

    customers = await customers_of(db, tenant.id)
    assert customers["c1"].churned_at == datetime(2024, 5, 31, tzinfo=UTC)
    assert customers["c1"].churn_label is True
    assert customers["c2"].churned_at == datetime(2024, 6, 1, 8, 30, tzinfo=UTC)
    assert (customers["c3"].churned_at, customers["c3"].churn_label) == (None, False)
    assert "left_on" not in customers["c1"].traits


@pytest.mark.parametrize("cell", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_a_churn_date_outside_years_1_to_9999_rejects_its_row_only(db, tenant, tmp_path, cell):
    path = write_csv(tmp_path / "dates.csv", ["id", "left_on"], [["c1", "2024-05-31"], ["c2", cell], ["c3", ""]])

    report = await run_customers(db, tenant.id, path, CustomerColumns(churn_date="left_on"))

    assert [(r.line, r.reason) for r in report.rejections] == [
        (3, f"churn date: {cell!r} falls outside years 1 to 9999 in UTC")
    ]
    assert set(await customers_of(db, tenant.id)) == {"c1", "c3"}


async def test_rerunning_the_same_file_duplicates_nothing(db, tenant, tmp_path):
    path = write_csv(tmp_path / "telco.csv", TELCO_COLUMNS, telco_rows(250))
    await run_customers(db, tenant.id, path, TELCO)
    before = await customers_of(db, tenant.id)

    report = await run_customers(db, tenant.id, path, TELCO)

    assert (report.imported, report.updated, report.rejected) == (0, 250, 0)
    after = await customers_of(db, tenant.id)
    assert {key: (c.id, c.traits, c.churn_label) for key, c in after.items()} == {
        key: (c.id, c.traits, c.churn_label) for key, c in before.items()
    }


async def test_events_for_an_imported_id_reach_the_imported_customer(db, tenant, tmp_path):
    customers_csv = write_csv(tmp_path / "few.csv", ["customer_id", "plan"], [["c1", "pro"], ["c2", "basic"]])
    await run_customers(db, tenant.id, customers_csv)
    imported = {key: customer.id for key, customer in (await customers_of(db, tenant.id)).items()}
    events = write_jsonl(tmp_path / "events.jsonl", [event_line("e1", "c1"), event_line("e2", "c2")])

    await run_events(db, tenant.id, events)

    assert {key: customer.id for key, customer in (await customers_of(db, tenant.id)).items()} == imported
    async with db.tenant_session(tenant.id) as session:
        statement = select(CustomerEvent.dedupe_key, CustomerEvent.customer_id).where(
            CustomerEvent.tenant_id == tenant.id
        )
        timeline = dict((await session.execute(statement)).all())
    assert timeline == {"e1": imported["c1"], "e2": imported["c2"]}


async def test_an_existing_customers_traits_are_merged_not_replaced(db, tenant, tmp_path):
    (existing,) = await create_customers(db, tenant.id, 1)
    path = write_csv(tmp_path / "more.csv", ["external_id", "seats", "region"], [[existing.external_id, "12", "EU"]])

    report = await run_customers(db, tenant.id, path)

    assert (report.imported, report.updated) == (0, 1)
    customer = (await customers_of(db, tenant.id))[existing.external_id]
    assert customer.id == existing.id
    assert customer.traits == {"plan": "pro", "seats": 12, "region": "EU"}


async def test_a_customer_known_by_its_api_identity_is_updated_not_duplicated(db, tenant, tmp_path):
    async with db.tenant_unit_of_work(tenant.id) as session:
        customer = Customer(tenant_id=tenant.id, external_id="user_whop_1", traits={})
        session.add(customer)
        await session.flush()
        session.add(CustomerIdentity(tenant_id=tenant.id, customer_id=customer.id, provider="api", provider_id="crm-1"))
    path = write_csv(tmp_path / "crm.csv", ["id", "segment"], [["crm-1", "smb"]])

    report = await run_customers(db, tenant.id, path)

    assert (report.imported, report.updated) == (0, 1)
    customers = await customers_of(db, tenant.id)
    assert list(customers) == ["user_whop_1"]
    assert customers["user_whop_1"].traits == {"segment": "smb"}


async def test_the_switch_interval_is_the_callers_and_the_cli_shortens_it_for_the_import(db, tenant, tmp_path):
    """Process-wide tuning is the composition root's: the import leaves the GIL's switch interval
    as its caller set it, and the CLI command runs it with the writer thread's."""
    path = write_csv(tmp_path / "good.csv", ["id", "plan"], [["c1", "pro"]])
    unreadable = tmp_path / "unreadable.csv"
    unreadable.write_bytes(b"id,plan\nc1,\xff\n")
    before = sys.getswitchinterval()
    seen = []

    def note_interval(_done: int) -> None:
        seen.append(sys.getswitchinterval())

    await import_customers(db, tenant.id, path, DEFAULT_COLUMNS, on_progress=note_interval)
    await cli_import_customers(db, tenant.id, path, DEFAULT_COLUMNS, on_progress=note_interval)
    with pytest.raises(UnreadableFile):
        await cli_import_customers(db, tenant.id, unreadable, DEFAULT_COLUMNS, on_progress=note_interval)

    assert seen == [before, SWITCH_INTERVAL_SECONDS]
    assert sys.getswitchinterval() == before


async def test_profile_columns_fill_the_profile(db, tenant, tmp_path):
    path = write_csv(tmp_path / "crm.csv", ["id", "Email", "Name", "plan"], [["c1", "ada@example.com", "Ada", "pro"]])

    await run_customers(db, tenant.id, path)

    customer = (await customers_of(db, tenant.id))["c1"]
    assert (customer.email, customer.name, customer.traits) == ("ada@example.com", "Ada", {"plan": "pro"})


async def test_any_text_is_stored_as_written(db, tenant, tmp_path):
    name = 'Zoë "Z" O\'Brien \\ 日本 🙂'
    note = "line one\nline two, with a comma\r\n\ttab \u2028 end"
    path = write_csv(
        tmp_path / "text.csv",
        ["id", "name", "note", "big", "ratio"],
        [["ü-1", name, note, "12345678901234567890", "0.1"], ["ü-2", "", "", "1", "2.5"]],
    )

    report = await run_customers(db, tenant.id, path)

    assert (report.imported, report.rejected) == (2, 0)
    customers = await customers_of(db, tenant.id)
    assert customers["ü-1"].name == name
    assert customers["ü-1"].traits == {"note": note.strip(), "big": 12345678901234567890, "ratio": 0.1}
    assert (customers["ü-2"].name, customers["ü-2"].traits) == (None, {"big": 1, "ratio": 2.5})


async def test_a_repeated_id_in_one_file_is_one_customer_with_the_last_values(db, tenant, tmp_path):
    path = write_csv(tmp_path / "dup.csv", ["id", "plan"], [["c1", "basic"], ["c2", "pro"], ["c1", "team"]])

    report = await run_customers(db, tenant.id, path)

    assert (report.imported, report.updated) == (2, 1)
    customers = await customers_of(db, tenant.id)
    assert len(customers) == 2
    assert customers["c1"].traits == {"plan": "team"}


async def test_the_last_row_of_an_id_wins_across_batches_and_parts(db, tenant, tmp_path, monkeypatch):
    # Batches of 6 rows, each written in parts at once on PostgreSQL: an id's rows land in
    # different batches, twice in some, at different places, and the file's last one must win.
    monkeypatch.setattr("churnsaver.backend.ingest.imports.CUSTOMER_BATCH_ROWS", 6)
    rows = [[f"c{n % 5}", f"v{n}"] for n in range(23)]
    path = write_csv(tmp_path / "repeats.csv", ["id", "version"], rows)

    report = await run_customers(db, tenant.id, path)

    assert (report.imported, report.updated) == (5, 18)
    customers = await customers_of(db, tenant.id)
    assert {external_id: customer.traits["version"] for external_id, customer in customers.items()} == {
        f"c{n % 5}": f"v{n}" for n in range(23)
    }


async def test_bad_rows_are_rejected_with_their_line_numbers_and_the_rest_imported(db, tenant, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        'id,notes,churn\nc1,fine,yes\nc2,"a note\nover two lines",maybe\nc3,too,many,fields\n,no id,no\nc6,fine,no\n',
        encoding="utf-8",
    )

    report = await run_customers(db, tenant.id, path, CustomerColumns(label="churn"))

    assert (report.imported, report.rejected) == (2, 3)
    assert [(r.line, r.reason) for r in report.rejections] == [
        (3, "churn label 'maybe' is not yes/no, true/false, 1/0 or churned/active"),
        (5, "4 fields where the header has 3"),
        (6, "the customer id must be 1 to 255 printable characters"),
    ]
    assert set(await customers_of(db, tenant.id)) == {"c1", "c6"}


async def test_a_value_past_the_type_sample_that_does_not_fit_is_kept_as_text(db, tenant, tmp_path):
    rows = [[f"c{n}", str(n)] for n in range(TYPE_SAMPLE_ROWS)] + [["odd", "about 40"]]
    path = write_csv(tmp_path / "late.csv", ["id", "seats"], rows)

    report = await run_customers(db, tenant.id, path)

    assert report.columns == {"seats": "integer"}
    customers = await customers_of(db, tenant.id)
    assert (customers["c7"].traits, customers["odd"].traits) == ({"seats": 7}, {"seats": "about 40"})


async def test_codes_with_leading_zeros_stay_text(db, tenant, tmp_path):
    path = write_csv(tmp_path / "zip.csv", ["id", "zip"], [["c1", "02134"], ["c2", "10001"]])

    report = await run_customers(db, tenant.id, path)

    assert report.columns == {"zip": "text"}
    assert (await customers_of(db, tenant.id))["c1"].traits == {"zip": "02134"}


async def test_a_large_file_is_written_in_batches_with_progress_to_the_end(db, tenant, tmp_path):
    count = CUSTOMER_BATCH_ROWS * 2 + 17
    path = write_csv(tmp_path / "large.csv", TELCO_COLUMNS, telco_rows(count))
    progress: list[int] = []

    report = await import_customers(db, tenant.id, path, TELCO, on_progress=progress.append)

    assert report.imported == count
    assert len(await customers_of(db, tenant.id)) == count
    assert len(progress) == 3
    assert progress == sorted(progress)
    assert progress[-1] == path.stat().st_size


async def test_an_import_touches_only_its_own_tenant(db, tenant, other_tenant, tmp_path):
    theirs = await create_customers(db, other_tenant.id, 2)
    rows = [[customer.external_id, "changed"] for customer in theirs]
    path = write_csv(tmp_path / "mine.csv", ["id", "plan"], rows)

    report = await run_customers(db, tenant.id, path)

    assert report.imported == 2
    untouched = await customers_of(db, other_tenant.id)
    assert {c.external_id: c.traits["plan"] for c in untouched.values()} == {c.external_id: "pro" for c in theirs}
    assert len(await identities_of(db, other_tenant.id)) == 0


async def test_the_id_column_can_be_named(db, tenant, tmp_path):
    path = write_csv(tmp_path / "named.csv", ["Account Number", "plan"], [["A-1", "pro"]])

    await run_customers(db, tenant.id, path, CustomerColumns(id="Account Number"))

    assert list(await customers_of(db, tenant.id)) == ["A-1"]


@pytest.mark.parametrize(
    ("content", "columns", "message"),
    [
        (b"", CustomerColumns(), "is empty"),
        (b"name,plan\nAda,pro\n", CustomerColumns(), "no id column (id, customer_id, customerID, external_id)"),
        (b"id,plan\nc1,pro\n", CustomerColumns(label="Churn"), "--label-column: no column 'Churn'"),
        (b"id,plan,plan\nc1,a,b\n", CustomerColumns(), "column 'plan' appears twice"),
        (b"id,plan\nc1,pro\nc2,caf\xe9\n", CustomerColumns(), "line 3: not UTF-8 text"),
        (b"id,plan\nc1,pro\x00\n", CustomerColumns(), "line 2: a NUL byte (is the file UTF-16, or not text?)"),
        ("id,plan\nc1,pro\n".encode("utf-16"), CustomerColumns(), "line 1: a NUL byte"),
        (b"id,plan\nc1,pro\nc2," + b"x" * 200_000 + b"\n", CustomerColumns(), "line 3: not readable as CSV"),
    ],
)
async def test_an_unreadable_file_stops_the_import_with_one_reason(db, tenant, tmp_path, content, columns, message):
    path = tmp_path / "broken.csv"
    path.write_bytes(content)

    with pytest.raises(UnreadableFile, match=re.escape(message)):
        await run_customers(db, tenant.id, path, columns)


async def test_a_byte_order_mark_does_not_stick_to_the_first_column(db, tenant, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffid,plan\r\nc1,pro\r\n".encode())

    await run_customers(db, tenant.id, path)

    assert (await customers_of(db, tenant.id))["c1"].traits == {"plan": "pro"}


# --- events ------------------------------------------------------------------------------------


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def event_line(message_id: str, customer_id: str = "cus_1", **fields) -> str:
    item = {"type": "track", "messageId": message_id, "customerId": customer_id, "event": "login", **fields}
    return json.dumps(item)


async def run_events(db, tenant_id, path: Path):
    return await import_events(db, tenant_id, path, on_progress=lambda _done: None)


async def inbox_of(db, tenant_id: uuid.UUID) -> list[InboxEvent]:
    async with db.tenant_session(tenant_id) as session:
        statement = select(InboxEvent).where(InboxEvent.tenant_id == tenant_id).order_by(InboxEvent.external_id)
        return list((await session.execute(statement)).scalars())


async def timeline_keys(db, tenant_id: uuid.UUID) -> list[str]:
    async with db.tenant_session(tenant_id) as session:
        statement = select(CustomerEvent.dedupe_key).where(CustomerEvent.tenant_id == tenant_id)
        return sorted((await session.execute(statement)).scalars())


async def test_events_are_applied_inline_without_a_copy_in_the_inbox(db, tenant, tmp_path):
    path = write_jsonl(
        tmp_path / "events.jsonl",
        [
            event_line("e1", timestamp="2025-01-01T00:00:00Z"),
            event_line("e2", event="subscription.started", properties={"plan": "pro", "mrr": 900, "currency": "usd"}),
            json.dumps({"type": "identify", "messageId": "e3", "customerId": "cus_2", "traits": {"seats": 4}}),
        ],
    )

    report = await run_events(db, tenant.id, path)

    assert (report.imported, report.duplicates, report.rejected) == (3, 0, 0)
    assert await inbox_of(db, tenant.id) == []
    assert set(await customers_of(db, tenant.id)) == {"cus_1", "cus_2"}
    assert {"e1", "e2"} <= set(await timeline_keys(db, tenant.id))


async def test_reimporting_events_duplicates_nothing(db, tenant, tmp_path):
    path = write_jsonl(tmp_path / "events.jsonl", [event_line(f"e{n}") for n in range(30)])
    await run_events(db, tenant.id, path)
    timeline = await timeline_keys(db, tenant.id)

    report = await run_events(db, tenant.id, path)

    assert (report.imported, report.duplicates) == (0, 30)
    assert await timeline_keys(db, tenant.id) == timeline


async def test_bad_event_lines_are_rejected_with_line_numbers(db, tenant, tmp_path):
    path = write_jsonl(
        tmp_path / "events.jsonl",
        [
            event_line("e1"),
            "",
            "{not json",
            json.dumps({"type": "track", "messageId": "e4", "customerId": "cus_1"}),
            "[1, 2]",
            event_line("e6", value=float("nan")),
            event_line("e7"),
        ],
    )

    report = await run_events(db, tenant.id, path)

    assert (report.imported, report.rejected) == (2, 4)
    assert [(r.line, r.reason) for r in report.rejections] == [
        (3, "malformed JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        (4, "event must be a non-empty string of printable characters"),
        (5, "an item must be a JSON object"),
        (6, "NaN is not JSON"),
    ]
    assert {"e1", "e7"} <= set(await timeline_keys(db, tenant.id))


UNACCEPTABLE_LINES = [
    (event_line("bad", timestamp="0001-01-01T00:00:00+01:00"), "timestamp: '0001-01-01T00:00:00+01:00' falls outside"),
    (event_line("bad", timestamp="9999-12-31T23:59:59-01:00"), "timestamp: '9999-12-31T23:59:59-01:00' falls outside"),
    (event_line("bad", note="\ud800"), "note: lone surrogates"),
    (event_line("bad", properties={"note": "\ud800"}), "properties.note: lone surrogates"),
    (event_line("bad", properties={"v": 10**400, "w": 10**30}).replace("1" + "0" * 400, "1e400"), "properties.v:"),
    (event_line("bad", properties={"v": "\u0000"}), "properties.v: NUL"),
]


@pytest.mark.parametrize(("line", "reason"), UNACCEPTABLE_LINES)
async def test_a_line_no_store_can_hold_is_rejected_alone_and_the_rest_imported(db, tenant, tmp_path, line, reason):
    path = write_jsonl(tmp_path / "events.jsonl", [event_line("e1"), line, event_line("e3")])

    report = await run_events(db, tenant.id, path)

    assert (report.imported, report.rejected) == (2, 1)
    [rejection] = report.rejections
    assert rejection.line == 2 and rejection.reason.startswith(reason)
    keys = set(await timeline_keys(db, tenant.id))
    assert {"e1", "e3"} <= keys and "bad" not in keys


async def test_an_events_import_counts_what_it_stored_repeated_and_rejected(db, tenant, tmp_path):
    path = write_jsonl(tmp_path / "events.jsonl", [event_line("e1"), "{not json", event_line("e2")])

    await run_events(db, tenant.id, path)
    first = await ingest_counters(db, tenant.id, Source.api)
    await run_events(db, tenant.id, path)

    assert first == (2, 0, 1)
    assert await ingest_counters(db, tenant.id, Source.api) == (2, 2, 2)


async def test_an_overlong_event_line_is_rejected_without_stopping_the_import(db, tenant, tmp_path, monkeypatch):
    monkeypatch.setattr("churnsaver.backend.ingest.imports.MAX_EVENT_LINE_BYTES", 200)
    path = write_jsonl(
        tmp_path / "events.jsonl", [event_line("e1"), event_line("e2", note="x" * 1000), event_line("e3")]
    )

    report = await run_events(db, tenant.id, path)

    assert report.imported == 2
    assert [(r.line, r.reason) for r in report.rejections] == [(2, "the line is longer than 200 bytes")]


async def test_imported_events_stay_in_their_tenant(db, tenant, other_tenant, tmp_path):
    path = write_jsonl(tmp_path / "events.jsonl", [event_line("e1", customer_id="shared")])
    await run_events(db, other_tenant.id, path)

    report = await run_events(db, tenant.id, path)

    assert report.imported == 1
    assert (await customers_of(db, tenant.id))["shared"].id != (await customers_of(db, other_tenant.id))["shared"].id
