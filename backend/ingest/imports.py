"""Bulk imports from files: customers from a CSV export, events from JSON Lines.

Both read their file as a stream, so memory stays flat whatever its size, and write in batches,
one transaction each (customers: one per part of a batch, as many parts as the database has
concurrent writers, written at once). Both are idempotent: customers upsert on their id and
events dedupe on `messageId`, so a re-run, or a run resumed after a crash, duplicates nothing.
A bad row is reported with its line number and skipped (values no store can hold too, as the
edge defines them in core/accepted_json.py); a file that cannot be read at all stops the import.
"""

import asyncio
import csv
import io
import itertools
import operator
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from churnsaver.backend.cases.tasks import enqueue_evaluation
from churnsaver.backend.core.accepted_json import loads_accepted, parse_timestamp
from churnsaver.backend.core.db import Database, utcnow
from churnsaver.backend.core.errors import InvalidInput
from churnsaver.backend.core.quarantine import Batch, is_transient, run_isolating
from churnsaver.backend.customers.apply import ApplyResult, apply_events, combined
from churnsaver.backend.customers.events import CanonicalEvent, Source
from churnsaver.backend.customers.identities import resolve_provider_ids
from churnsaver.backend.customers.trait_types import TraitType, infer_type, is_missing, trait_encoder
from churnsaver.backend.customers.upsert import (
    CustomerBatch,
    CustomerRow,
    has_api_identities,
    prepare_customers,
    upsert_customers,
)
from churnsaver.backend.customers.usage_bulk import write_usage
from churnsaver.backend.ingest.events_api import check_item, checked_events
from churnsaver.backend.ingest.import_parser import InProcessParser, ParsedChunk, ParserProcess, reread_chunk
from churnsaver.backend.ingest.inbox import count, store
from churnsaver.backend.ingest.models import InboxStatus
from churnsaver.backend.ingest.repository import InboxEventRepository

CUSTOMER_BATCH_ROWS = 20_000
PARSE_STEP_ROWS = 100  # rows parsed between two turns of the event loop
EVENT_BATCH_LINES = 20_000  # lines applied per transaction: a batch's statements are a fixed number
CHUNK_ATTEMPTS = 3
TYPE_SAMPLE_ROWS = 1000  # rows read ahead to infer column types, before anything is written
MAX_REPORTED_REJECTIONS = 1000  # all are counted; only these are kept, to keep memory flat
MAX_EVENT_LINE_BYTES = 1024 * 1024
# Events files from this size on are parsed by a process of their own: a smaller one parses in
# less time than that process takes to start (docs/performance.md, history import).
PARSER_PROCESS_BYTES = 8 * 1024 * 1024
READ_BLOCK_BYTES = 256 * 1024  # CSV text decoded at a time
ID_COLUMN_CANDIDATES = ("id", "customer_id", "customerID", "external_id")
# Columns that fill the customer's profile rather than its traits, with the profile's limits; in
# the order of the profile fields that end a `CustomerRow`.
PROFILE_COLUMNS = {"email": 320, "name": 255, "phone": 32}
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
OnEvents = Callable[[int], None]  # called with the number of events (lines) applied so far
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
    quarantined: int = 0  # of `imported`: events that could not be applied, in the inbox with the reason
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)  # the first MAX_REPORTED_REJECTIONS
    columns: dict[str, TraitType] = field(default_factory=dict)  # customers: trait column -> type

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
    profile: tuple[tuple[int, int, str, int], ...]  # (index, position in PROFILE_COLUMNS, field, max length)
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
        fields = list(PROFILE_COLUMNS)
        profile = tuple(
            (index, fields.index(name.lower()), name.lower(), PROFILE_COLUMNS[name.lower()])
            for name, index in positions.items()
            if name.lower() in PROFILE_COLUMNS and name not in special
        )
        profile_names = {header[index] for index, _, _, _ in profile}
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
    # Exports rarely say their zone; a date without one is taken as UTC, like everything stored.
    return parse_timestamp(cell, "churn date", naive_is_utc=True)


RowTraits = Callable[[list[str]], str]  # a row -> its traits, as a JSON object's text


def row_traits(layout: CustomerLayout, types: list[TraitType]) -> RowTraits:
    """The traits of a row, each cell encoded by its column's encoder: the loop over the cells
    runs in C (map, filter, join), and most cells are a cache hit."""
    encoders = [trait_encoder(name, kind) for (_, name), kind in zip(layout.traits, types, strict=True)]
    indexes = [index for index, _ in layout.traits]
    # itemgetter returns a tuple for two indexes or more only.
    cells = operator.itemgetter(*indexes) if len(indexes) > 1 else lambda row: [row[index] for index in indexes]

    def traits(row: list[str]) -> str:
        return "{" + ",".join(filter(None, map(operator.call, encoders, cells(row)))) + "}"

    return traits


def customer_row(row: list[str], layout: CustomerLayout, traits: RowTraits) -> CustomerRow:
    """The customer of one row; ValueError says why the row is rejected."""
    if len(row) != layout.width:
        raise ValueError(f"{len(row)} fields where the header has {layout.width}")
    external_id = row[layout.id_index].strip()
    if not external_id or len(external_id) > 255 or not external_id.isprintable():
        raise ValueError("the customer id must be 1 to 255 printable characters")
    profile: list[str | None] = [None] * len(PROFILE_COLUMNS)
    for index, position, name, max_length in layout.profile:
        cell = row[index].strip()
        if len(cell) > max_length:
            raise ValueError(f"{name} is longer than {max_length} characters")
        profile[position] = cell or None
    label = None if layout.label_index is None else parse_label(row[layout.label_index].strip())
    churned_at = None if layout.churn_date_index is None else parse_churn_date(row[layout.churn_date_index].strip())
    # A churn date says the customer churned, whatever the label column (if any) left blank.
    if label is None and churned_at is not None:
        label = True
    # email, name, phone: PROFILE_COLUMNS order
    return (external_id, traits(row), label, churned_at, profile[0], profile[1], profile[2])


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


def _decoded_lines(raw: BinaryIO, path: Path) -> Iterator[str]:
    """The file's lines as text, decoded a block of whole lines at a time: decoding, and finding
    the lines, run in C rather than once per line. A NUL byte or a bad encoding is reported with
    the number of the line it is on."""
    first_line = 1
    while block := raw.read(READ_BLOCK_BYTES):
        if not block.endswith(b"\n"):
            block += raw.readline()  # to the end of the block's last line
        # Text never holds NUL (PostgreSQL refuses it); a file that does is UTF-16 or not text.
        if (nul := block.find(b"\x00")) >= 0:
            line = first_line + block.count(b"\n", 0, nul)
            raise UnreadableFile(f"{path}: line {line}: a NUL byte (is the file UTF-16, or not text?)")
        try:
            # utf-8-sig on the first block: spreadsheet exports often start with a byte-order
            # mark, which would otherwise stick to the first column's name.
            text = block.decode("utf-8-sig" if first_line == 1 else "utf-8")
        except UnicodeDecodeError:
            line = first_line + next(n for n, data in enumerate(block.split(b"\n")) if not _is_utf8(data))
            raise UnreadableFile(f"{path}: line {line}: not UTF-8 text (save the export as UTF-8)") from None
        first_line += block.count(b"\n")
        # Split at "\n" only, as the file's own lines are: a stray "\r" or form feed in a cell
        # is the cell's, not a line break.
        yield from io.StringIO(text, newline="\n")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of `size` items (the last one shorter); itertools.batched needs Python 3.12."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _open_file(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise UnreadableFile(f"{path}: no such file") from None
    except OSError as error:
        raise UnreadableFile(f"{path}: {error.strerror}") from None


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
        traits = row_traits(layout, types)
        # Each batch is written while the next one is parsed and prepared: the database works in
        # another thread (SQLite) or process (PostgreSQL). Batches are written one after another,
        # in file order.
        writing: asyncio.Task[None] | None = None
        writers = await _writers(db, tenant_id)
        batches = _customer_batches(itertools.chain(sample, rows), layout, traits, db.engine.dialect, writers, report)
        try:
            async for batch in batches:
                if writing is not None:
                    await writing
                done = partial(on_progress, raw.tell())
                writing = asyncio.create_task(_write_customers(db, tenant_id, batch, report, done))
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                await asyncio.wait([writing])  # a file found unreadable midway: finish what was parsed
    return report


async def _writers(db: Database, tenant_id: uuid.UUID) -> int:
    """How many transactions write each batch at once: as many as the database has concurrent
    writers. A batch's parts hold no id in common, and the next batch waits for all of them, so a
    later row for an id still wins. But where two ids can be one customer (a customer merged from
    several providers has events-API identities), two parts could update one row in opposite
    orders: one writer then."""
    if db.concurrent_writers == 1 or await has_api_identities(db, tenant_id):
        return 1
    return db.concurrent_writers


async def _customer_batches(
    records: Iterator[tuple[int, list[str]]],
    layout: CustomerLayout,
    traits: RowTraits,
    dialect: Dialect,
    writers: int,
    report: ImportReport,
) -> AsyncIterator[list[CustomerBatch]]:
    """The customers of each CUSTOMER_BATCH_ROWS records, converted a step at a time, and as they
    are read, in a part per writer, to be written at once: only converted customers (tuples of
    text, which the garbage collector soon stops tracking) are held until written, not the records
    they came from."""
    while True:
        values: list[CustomerRow] = []
        read = 0
        for part in batched(itertools.islice(records, CUSTOMER_BATCH_ROWS), PARSE_STEP_ROWS):
            values += _customer_values(part, layout, traits, report)
            read += len(part)
            await asyncio.sleep(0)  # lets the event loop take in a finished write (its counts, its progress)
        if not read:
            return
        yield prepare_customers(dialect, values, writers)


def _customer_values(
    rows: list[tuple[int, list[str]]], layout: CustomerLayout, traits: RowTraits, report: ImportReport
) -> list[CustomerRow]:
    values = []
    for line, row in rows:
        try:
            values.append(customer_row(row, layout, traits))
        except ValueError as error:
            report.reject(line, str(error))
    return values


async def _write_customers(
    db: Database, tenant_id: uuid.UUID, parts: list[CustomerBatch], report: ImportReport, done: Callable[[], None]
) -> None:
    """Write a batch's parts, a transaction each, at once. If one fails the others are cancelled
    (rolled back unless committed already): the import stops, and a re-run upserts them again."""
    # A unit of work: the event loop, busy parsing the next batch, would otherwise hold up each
    # statement's answer.
    async with asyncio.TaskGroup() as writes:
        tasks = [
            writes.create_task(
                db.run_unit_of_work(tenant_id, partial(upsert_customers, tenant_id=tenant_id, batch=batch))
            )
            for batch in parts
        ]
    for task in tasks:
        created, updated = task.result()
        report.imported += created
        report.updated += updated
    done()


async def import_events(
    db: Database,
    tenant_id: uuid.UUID,
    path: Path,
    on_progress: OnProgress,
    on_events: OnEvents | None = None,
) -> ImportReport:
    """Apply each line of the JSON Lines file at `path` as an events-API item.

    A parsing process (import_parser.py; in this process for a file under PARSER_PROCESS_BYTES)
    reads the file and checks each line exactly as the events API checks an item, while this
    process writes the chunks before: a transaction per EVENT_BATCH_LINES lines, one at a time,
    without a stop in the inbox. Usage events, most of a history, are
    written in bulk (customers/usage_bulk.py); the few lines that carry state are applied by
    `apply_events`, as the events API's processing does. The timeline's unique (source,
    messageId) is the import's idempotency key, so a re-run, or a run resumed after a crash,
    applies nothing twice. A chunk the database refuses is applied again line by line, and a
    line that cannot be applied is quarantined (core/quarantine.py) into the inbox with its
    reason, where `failedEvents` lists it and `churnsaver ingest retry` takes it up, like a
    delivery of the events API.
    """
    _open_file(path).close()  # a missing or unreadable file is reported before anything starts
    report = ImportReport()
    received_at = utcnow().isoformat()
    events_done = 0
    known: set[str] = set()  # provider ids whose customer a committed chunk has made sure of
    small = path.stat().st_size < PARSER_PROCESS_BYTES
    parser_class = InProcessParser if small else ParserProcess

    with parser_class(path, EVENT_BATCH_LINES, MAX_EVENT_LINE_BYTES, received_at, db.engine.dialect.name) as parser:
        # One chunk written at a time (the parser works ahead): two at once on PostgreSQL lost a
        # later state event of a customer whose ids both chunks resolved (docs/performance.md).
        while (chunk := await asyncio.to_thread(parser.next_chunk)) is not None:
            for line, reason in chunk.rejected:
                report.reject(line, reason)
            write = partial(
                _write_chunk, tenant_id=tenant_id, chunk=chunk, path=path, received_at=received_at, known=known
            )
            outcome = await _write_retrying(db, tenant_id, write)
            known.update(outcome.customers)
            report.imported += outcome.applied + outcome.quarantined  # stored, applied or in quarantine
            report.duplicates += outcome.duplicates
            report.quarantined += outcome.quarantined
            events_done += chunk.lines
            on_progress(chunk.end)
            if on_events is not None:
                on_events(events_done)
    return report


async def _write_retrying(
    db: Database, tenant_id: uuid.UUID, write: Callable[[AsyncSession, Batch], Awaitable["_LinesApplied"]]
) -> "_LinesApplied":
    """A chunk written in its transaction, again after a transient failure: a chunk and the events
    API's processing that update one customer in opposite orders can deadlock, and the database
    then rolls one back."""
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            return await run_isolating(db, tenant_id, write, what="import events")
        except Exception as error:
            if attempt == CHUNK_ATTEMPTS or not is_transient(error):
                raise
    raise AssertionError("unreachable")


async def _write_chunk(
    session: AsyncSession,
    batch: Batch,
    *,
    tenant_id: uuid.UUID,
    chunk: ParsedChunk,
    path: Path,
    received_at: str,
    known: set[str],
) -> "_LinesApplied":
    """Apply a parsed chunk: the lines with state through `apply_events`, the usage events in
    bulk, and count them. Isolating (the chunk failed), its lines are read again and applied
    line by line, those that cannot be applied quarantined."""
    if batch.isolating:
        lines = await asyncio.to_thread(reread_chunk, path, chunk, MAX_EVENT_LINE_BYTES)
        parsed = parse_event_lines(lines, received_at)
        raw = dict(lines)
        return await _apply_lines(session, batch, tenant_id=tenant_id, parsed=parsed, raw=raw, received_at=received_at)
    # Lines with state first: customers they are the first to name are created with the profiles
    # they give, as one `apply_events` of the whole chunk would.
    stateful = parse_event_lines(list(chunk.stateful), received_at)
    events = [event for _, line_events in stateful.lines for event in line_events]
    result = await apply_events(session, tenant_id, events) if events else None
    if result is not None:
        enqueue_evaluation(session, tenant_id, list(result.billing_customers))
    missing = {(Source.api.value, provider_id) for provider_id in chunk.provider_ids if provider_id not in known}
    if missing:
        await resolve_provider_ids(session, tenant_id, missing)
    now = utcnow()
    new_usage = await session.run_sync(
        lambda sync_session: write_usage(
            sync_session, tenant_id, chunk.usage, chunk.usage_rows, source=Source.api, provider=Source.api, now=now
        )
    )
    new = new_usage + (result.applied if result is not None else 0)
    duplicates = chunk.duplicates + chunk.usage_rows - new_usage + (result.duplicates if result is not None else 0)
    await count(session, tenant_id, Source.api, accepted=new, duplicate=duplicates, rejected=len(chunk.rejected))
    return _LinesApplied(new, duplicates, 0, frozenset(chunk.provider_ids))


@dataclass(frozen=True, slots=True)
class ParsedLines:
    """A batch of lines as the events API would take them: the events of each valid line, the
    reason of each line refused."""

    lines: list[tuple[int, list[CanonicalEvent]]]
    rejected: list[tuple[int, str]]


def parse_event_lines(chunk: list[tuple[int, bytes | None]], received_at: str) -> ParsedLines:
    """The events of each line, checked by the edge's JSON check and the events API's item check."""
    lines: list[tuple[int, list[CanonicalEvent]]] = []
    rejected: list[tuple[int, str]] = []
    for line, data in chunk:
        try:
            lines.append((line, _line_events(data, received_at)))
        except ValueError as error:
            rejected.append((line, str(error)))
    return ParsedLines(lines, rejected)


def _line_events(data: bytes | None, received_at: str) -> list[CanonicalEvent]:
    if data is None:
        raise ValueError(f"the line is longer than {MAX_EVENT_LINE_BYTES} bytes")
    return checked_events(loads_accepted(data), received_at, acceptable=True)


@dataclass(frozen=True, slots=True)
class _LinesApplied:
    applied: int
    duplicates: int
    quarantined: int
    customers: frozenset[str] = frozenset()  # provider ids now sure to have a customer


async def _apply_lines(
    session: AsyncSession,
    batch: Batch,
    *,
    tenant_id: uuid.UUID,
    parsed: ParsedLines,
    raw: dict[int, bytes | None],
    received_at: str,
) -> _LinesApplied:
    """Apply a batch's lines and count them in the tenant's ingest counters; the lines that
    cannot be applied (only when `batch` isolates) are stored in the inbox, quarantined."""

    async def apply_group(group: list[tuple[int, list[CanonicalEvent]]]) -> ApplyResult:
        return await apply_events(session, tenant_id, [event for _, events in group for event in events])

    applied = await batch.apply(parsed.lines, apply_group)
    result = combined(applied.results) if applied.results else None
    if result is not None:
        enqueue_evaluation(session, tenant_id, list(result.billing_customers))
    new = result.applied if result is not None else 0
    duplicates = result.duplicates if result is not None else 0
    inbox = InboxEventRepository(session, tenant_id)
    quarantined = 0
    for failure in applied.failures:
        line, _ = failure.item
        delivery = check_item(loads_accepted(raw[line] or b""), received_at, acceptable=True)
        # Already in the inbox when an earlier run quarantined it: it stays as it is, a duplicate.
        if stored := await store(session, tenant_id, Source.api, [delivery]):
            await inbox.mark(stored, InboxStatus.quarantined, failure.reason)
            quarantined += 1
        else:
            duplicates += 1
    accepted = new + quarantined
    await count(session, tenant_id, Source.api, accepted=accepted, duplicate=duplicates, rejected=len(parsed.rejected))
    return _LinesApplied(new, duplicates, quarantined)
