"""Bulk imports from files: customers from a CSV export, events from JSON Lines.

Both read their file as a stream, so memory stays flat whatever its size, and write in batches,
one transaction each. Both are idempotent: customers upsert on their id and events dedupe on
`messageId`, so a re-run, or a run resumed after a crash, duplicates nothing. A bad row is
reported with its line number and skipped; a file that cannot be read at all stops the import.
"""

import csv
import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from sqlalchemy import JSON, cast, func, literal, select, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.customers.models import Customer, CustomerIdentity
from churnsaver.backend.db import Database, insert_for, utcnow
from churnsaver.backend.errors import InvalidInput
from churnsaver.backend.ingest.column_types import Converter, TraitType, converter_for, infer_type, is_missing
from churnsaver.backend.ingest.events_api import check_item, loads_strict
from churnsaver.backend.ingest.inbox import Delivery, count, store_deliveries
from churnsaver.backend.ingest.models import Source
from churnsaver.backend.ingest.row_batches import RowBatch, is_one_of, ordered_uuid, plan_each_execution

CUSTOMER_BATCH_ROWS = 5000
EVENT_BATCH_LINES = 500
TYPE_SAMPLE_ROWS = 1000  # rows read ahead to infer column types, before anything is written
MAX_REPORTED_REJECTIONS = 1000  # all are counted; only these are kept, to keep memory flat
MAX_EVENT_LINE_BYTES = 1024 * 1024
ID_COLUMN_CANDIDATES = ("id", "customer_id", "customerID", "external_id")
# Columns that fill the customer's profile rather than its traits, with the profile's limits.
PROFILE_COLUMNS = {"email": 320, "name": 255, "phone": 32}
# What a row gives a customer; the last four keep their stored value where a row leaves them blank.
CUSTOMER_ROW_COLUMNS = ("id", "external_id", "traits", "churn_label", "churned_at", "email", "name", "phone")
KEPT_UNLESS_GIVEN = ("churn_label", "churned_at", "email", "name", "phone")
LABEL_WORDS = {
    "yes": True,
    "no": False,
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "churned": True,
    "active": False,
}

OnProgress = Callable[[int], None]  # called with the bytes of the file read so far
T = TypeVar("T")


class UnreadableFile(InvalidInput):
    """The file cannot be imported at all: missing, empty, not UTF-8, not CSV, no id column."""


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str


@dataclass
class ImportReport:
    imported: int = 0  # customers created / events stored for the first time
    updated: int = 0  # customers that existed and were updated
    duplicates: int = 0  # events already stored by an earlier delivery or run
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)  # the first MAX_REPORTED_REJECTIONS
    columns: dict[str, TraitType] = field(default_factory=dict)  # customers: trait column -> type
    processed: bool = False  # events: processed inline (else left to the job queue)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_REPORTED_REJECTIONS:
            self.rejections.append(Rejection(line, reason))


@dataclass(frozen=True, slots=True)
class CustomerColumns:
    """Which columns hold the id, the churn label and the churn date; None picks the default."""

    id: str | None = None
    label: str | None = None
    churn_date: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerLayout:
    """Where each part of a customer is in a row of one particular file."""

    width: int
    id_index: int
    label_index: int | None
    churn_date_index: int | None
    profile: tuple[tuple[int, str, int], ...]  # (index, field, max length)
    traits: tuple[tuple[int, str], ...]  # (index, trait name)

    @classmethod
    def from_header(cls, header: list[str], columns: CustomerColumns) -> "CustomerLayout":
        positions = {name: index for index, name in enumerate(header) if name}
        if len(positions) != len([name for name in header if name]):
            duplicate = next(name for name in header if name and header.count(name) > 1)
            raise UnreadableFile(f"column {duplicate!r} appears twice in the header")
        id_column = columns.id or _default_id_column(header)

        def index_of(name: str, flag: str) -> int:
            if name not in positions:
                raise UnreadableFile(f"{flag}: no column {name!r} (columns: {', '.join(positions)})")
            return positions[name]

        special = {id_column, columns.label, columns.churn_date}
        profile = tuple(
            (index, name.lower(), PROFILE_COLUMNS[name.lower()])
            for name, index in positions.items()
            if name.lower() in PROFILE_COLUMNS and name not in special
        )
        profile_names = {header[index] for index, _, _ in profile}
        return cls(
            width=len(header),
            id_index=index_of(id_column, "--id-column"),
            label_index=None if columns.label is None else index_of(columns.label, "--label-column"),
            churn_date_index=(
                None if columns.churn_date is None else index_of(columns.churn_date, "--churn-date-column")
            ),
            profile=profile,
            # The label and churn date stay out of the traits: a model scoring traits would
            # otherwise be trained on the answer.
            traits=tuple((index, name) for name, index in positions.items() if name not in special | profile_names),
        )


def _default_id_column(header: list[str]) -> str:
    by_lowercase = {name.lower(): name for name in header if name}
    for candidate in ID_COLUMN_CANDIDATES:
        if candidate.lower() in by_lowercase:
            return by_lowercase[candidate.lower()]
    raise UnreadableFile(
        f"no id column ({', '.join(ID_COLUMN_CANDIDATES)}): name it with --id-column "
        f"(columns: {', '.join(name for name in header if name)})"
    )


def parse_label(cell: str) -> bool | None:
    if is_missing(cell):
        return None
    try:
        return LABEL_WORDS[cell.lower()]
    except KeyError:
        raise ValueError(f"churn label {cell!r} is not yes/no, true/false, 1/0 or churned/active") from None


def parse_churn_date(cell: str) -> datetime | None:
    if is_missing(cell):
        return None
    try:
        parsed = datetime.combine(date.fromisoformat(cell), datetime.min.time()) if len(cell) == 10 else None
        parsed = parsed or datetime.fromisoformat(cell)
    except ValueError:
        raise ValueError(f"churn date {cell!r} is not an ISO 8601 date") from None
    # Exports rarely say their zone; a date without one is taken as UTC, like everything stored.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def customer_row(row: list[str], layout: CustomerLayout, converters: list[Converter]) -> dict[str, Any]:
    """The column values of one customer; ValueError says why the row is rejected."""
    if len(row) != layout.width:
        raise ValueError(f"{len(row)} fields where the header has {layout.width}")
    external_id = row[layout.id_index].strip()
    if not external_id or len(external_id) > 255 or not external_id.isprintable():
        raise ValueError("the customer id must be 1 to 255 printable characters")
    traits: dict[str, Any] = {}
    for (index, name), convert in zip(layout.traits, converters, strict=True):
        cell = row[index].strip()
        if not is_missing(cell):
            traits[name] = convert(cell)
    values: dict[str, Any] = {"external_id": external_id, "traits": traits, "email": None, "name": None, "phone": None}
    for index, name, max_length in layout.profile:
        cell = row[index].strip()
        if len(cell) > max_length:
            raise ValueError(f"{name} is longer than {max_length} characters")
        values[name] = cell or None
    label = None if layout.label_index is None else parse_label(row[layout.label_index].strip())
    churned_at = None if layout.churn_date_index is None else parse_churn_date(row[layout.churn_date_index].strip())
    # A churn date says the customer churned, whatever the label column (if any) left blank.
    values["churn_label"] = True if label is None and churned_at is not None else label
    values["churned_at"] = churned_at
    return values


def _numbered_rows(reader: Any, path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line of the record, its fields); a quoted field may span lines."""
    line = reader.line_num + 1
    try:
        for row in reader:
            if row:
                yield line, row
            line = reader.line_num + 1
    except csv.Error as error:
        raise UnreadableFile(f"{path}: line {line}: not readable as CSV ({error})") from None


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of `size` items (the last one shorter); itertools.batched needs Python 3.12."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _decoded_lines(raw: BinaryIO, path: Path) -> Iterator[str]:
    """The file's lines as text, decoded one by one so that an encoding error has a line number."""
    for number, line in enumerate(raw, 1):
        # Text never holds NUL (PostgreSQL refuses it); a file that does is UTF-16 or not text.
        if b"\x00" in line:
            raise UnreadableFile(f"{path}: line {number}: a NUL byte (is the file UTF-16, or not text?)")
        try:
            # utf-8-sig on the first line: spreadsheet exports often start with a byte-order
            # mark, which would otherwise stick to the first column's name.
            yield line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise UnreadableFile(f"{path}: line {number}: not UTF-8 text (save the export as UTF-8)") from None


async def import_customers(
    db: Database, tenant_id: uuid.UUID, path: Path, columns: CustomerColumns, on_progress: OnProgress
) -> ImportReport:
    """Upsert a customer per row of the CSV at `path`, its other columns becoming traits."""
    report = ImportReport()
    with _open_file(path) as raw:
        reader = csv.reader(_decoded_lines(raw, path))
        rows = _numbered_rows(reader, path)
        header_row = next(rows, None)
        if header_row is None:
            raise UnreadableFile(f"{path} is empty")
        header = [name.strip() for name in header_row[1]]
        layout = CustomerLayout.from_header(header, columns)
        sample = list(itertools.islice(rows, TYPE_SAMPLE_ROWS))
        types = [infer_type(row[index].strip() for _, row in sample if index < len(row)) for index, _ in layout.traits]
        report.columns = {name: kind for (_, name), kind in zip(layout.traits, types, strict=True)}
        converters = [converter_for(kind) for kind in types]
        for batch in batched(itertools.chain(sample, rows), CUSTOMER_BATCH_ROWS):
            values = []
            for line, row in batch:
                try:
                    values.append(customer_row(row, layout, converters))
                except ValueError as error:
                    report.reject(line, str(error))
            async with db.tenant_unit_of_work(tenant_id) as session:
                created, updated = await upsert_customers(session, tenant_id, values)
            report.imported += created
            report.updated += updated
            on_progress(raw.tell())
    return report


def _open_file(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise UnreadableFile(f"{path}: no such file") from None
    except OSError as error:
        raise UnreadableFile(f"{path}: {error.strerror}") from None


async def upsert_customers(session: AsyncSession, tenant_id: uuid.UUID, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Create or update one customer per row, found by its events-API id; (created, updated).

    A customer is found through its ("api", id) identity first, since a customer merged from
    several providers may carry another external id; otherwise by external id. Customers without
    that identity get it. Traits merge into the ones already known; a blank label, churn date or
    profile field keeps what is there.
    """
    await plan_each_execution(session)
    by_api_id = {row["external_id"]: row for row in rows}  # a later row for the same id wins
    via_identity = await _external_ids_by_api_identity(session, tenant_id, list(by_api_id))
    targets = {via_identity.get(api_id, api_id): row for api_id, row in by_api_id.items()}
    batch_time = utcnow()
    await _upsert(
        session, tenant_id, batch_time, [{**row, "id": ordered_uuid(), "external_id": t} for t, row in targets.items()]
    )
    unlinked = [{"id": ordered_uuid(), "provider_id": api_id} for api_id in by_api_id if api_id not in via_identity]
    await _link_api_identities(session, tenant_id, unlinked)
    created = await _count_created_at(session, tenant_id, batch_time)
    return created, len(rows) - created


async def _external_ids_by_api_identity(
    session: AsyncSession, tenant_id: uuid.UUID, api_ids: list[str]
) -> dict[str, str]:
    statement = (
        select(CustomerIdentity.provider_id, Customer.external_id)
        .join(Customer, Customer.id == CustomerIdentity.customer_id)
        .where(
            CustomerIdentity.tenant_id == tenant_id,
            CustomerIdentity.provider == Source.api,
            is_one_of(session, CustomerIdentity.provider_id, api_ids),
        )
    )
    return dict((await session.execute(statement)).all())


async def _count_created_at(session: AsyncSession, tenant_id: uuid.UUID, batch_time: datetime) -> int:
    """The customers this batch created: an update keeps `created_at`, an insert has the batch's
    time, so the page index (tenant, created_at, id) counts them without a look-up per id."""
    statement = select(func.count()).where(Customer.tenant_id == tenant_id, Customer.created_at == batch_time)
    return (await session.execute(statement)).scalar_one()


async def _upsert(session: AsyncSession, tenant_id: uuid.UUID, now: datetime, customers: list[dict[str, Any]]) -> None:
    table = Customer.__table__
    row_batch = RowBatch(session, {name: table.c[name].type for name in CUSTOMER_ROW_COLUMNS})
    batch = row_batch.rows()
    rows = select(
        *(batch.c[name] for name in CUSTOMER_ROW_COLUMNS),
        literal(tenant_id, table.c.tenant_id.type),
        literal(now, table.c.created_at.type),
        literal(now, table.c.updated_at.type),
    ).where(true())
    columns = [*CUSTOMER_ROW_COLUMNS, "tenant_id", "created_at", "updated_at"]
    insert = insert_for(session)(table).from_select(columns, rows)
    statement = insert.on_conflict_do_update(
        index_elements=["tenant_id", "external_id"],
        set_={
            "traits": _merged_traits(session, table.c.traits, insert.excluded.traits),
            **{name: func.coalesce(insert.excluded[name], table.c[name]) for name in KEPT_UNLESS_GIVEN},
            "updated_at": insert.excluded.updated_at,
        },
    )
    await row_batch.execute(session, statement, customers)


async def _link_api_identities(session: AsyncSession, tenant_id: uuid.UUID, identities: list[dict[str, Any]]) -> None:
    """Give each customer whose external id is `provider_id` the ("api", provider_id) identity."""
    table = CustomerIdentity.__table__
    customers = Customer.__table__
    row_batch = RowBatch(session, {"id": table.c.id.type, "provider_id": table.c.provider_id.type})
    batch = row_batch.rows()
    rows = (
        select(
            batch.c.id,
            literal(tenant_id, table.c.tenant_id.type),
            customers.c.id,
            literal(Source.api.value, table.c.provider.type),
            batch.c.provider_id,
        )
        .join_from(batch, customers, customers.c.external_id == batch.c.provider_id)
        .where(customers.c.tenant_id == tenant_id)
    )
    columns = ["id", "tenant_id", "customer_id", "provider", "provider_id"]
    statement = insert_for(session)(table).from_select(columns, rows).on_conflict_do_nothing()
    await row_batch.execute(session, statement, identities)


def _merged_traits(session: AsyncSession, current: Any, incoming: Any) -> Any:
    if session.bind.dialect.name == "postgresql":
        return cast(cast(current, JSONB).op("||")(cast(incoming, JSONB)), JSON)
    return func.json_patch(current, incoming)


async def import_events(db: Database, tenant_id: uuid.UUID, path: Path, on_progress: OnProgress) -> ImportReport:
    """Store each line of the JSON Lines file at `path` as an events-API item and process it.

    Items are processed inline, in the transaction that stores them, so an import that returns
    has applied everything; items already stored by an earlier run are duplicates and skipped.
    """
    from churnsaver.backend.ingest.tasks import process_inbox  # the CLI only: keeps the API import light

    report = ImportReport(processed=True)
    received_at = utcnow().isoformat()
    with _open_file(path) as file:
        for batch in batched(_event_lines(file), EVENT_BATCH_LINES):
            deliveries: list[Delivery] = []
            rejected_before = report.rejected
            for line, data in batch:
                try:
                    deliveries.append(_event_delivery(data, received_at))
                except ValueError as error:
                    report.reject(line, str(error))
            async with db.tenant_unit_of_work(tenant_id) as session:
                new_ids = await store_deliveries(session, tenant_id, Source.api, deliveries)
                await count(session, tenant_id, Source.api, rejected=report.rejected - rejected_before)
                if new_ids:
                    await process_inbox(session, tenant_id, new_ids)
            report.imported += len(new_ids)
            report.duplicates += len(deliveries) - len(new_ids)
            on_progress(file.tell())
    return report


def _event_lines(file: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, its bytes) of every non-blank line; None for a line over the limit, which
    is skipped without being held in memory."""
    for number in itertools.count(1):
        data = file.readline(MAX_EVENT_LINE_BYTES + 1)
        if not data:
            return
        if len(data) > MAX_EVENT_LINE_BYTES and not data.endswith(b"\n"):
            while data and not data.endswith(b"\n"):
                data = file.readline(MAX_EVENT_LINE_BYTES)
            yield number, None
        elif data.strip():
            yield number, data


def _event_delivery(data: bytes | None, received_at: str) -> Delivery:
    if data is None:
        raise ValueError(f"the line is longer than {MAX_EVENT_LINE_BYTES} bytes")
    try:
        item = loads_strict(data)
    except (ValueError, RecursionError):
        raise ValueError("not valid JSON") from None
    return check_item(item, received_at)
