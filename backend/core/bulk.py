"""Bulk writes: one statement per batch of rows, whatever the number of rows, on both backends.

SQLAlchemy's executemany runs every parameter of every row through its general machinery, which
for a large batch costs more than the database's own work (docs/performance.md). Here a batch is
one statement and one round trip: on PostgreSQL each column is bound once, as an array, unnested by the server; on
SQLite the rows are bound as one JSON array, read by `json_each`. The values every row shares
(the tenant, the batch time) are bound once.

- `RowBatch`: INSERT or UPDATE of a batch; `insert_rows` and `update_by_id` for async code.
- `StagedRows`: rows already in their stored form, COPY'd on PostgreSQL, for the largest batches.
- `StagedText`: rows encoded as text ahead (in another process), staged in a temporary table.
- `InsertIfNew`: an INSERT that skips rows already stored and tells which ones it stored.
- `is_one_of`: `column IN (a batch of values)` as one parameter.

COPY and row-level security: COPY is refused into a table under row-level security, so
`StagedRows` COPYs into a temporary table (no policies, seen by this transaction only) and
INSERT ... SELECTs from it under the tenant's policies, like any other write.

Every SQLite-versus-PostgreSQL difference of a bulk write lives here, not in the domains.
"""

import io
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from typing import cast as typing_cast

import orjson
from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    cast,
    column,
    false,
    func,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql.asyncpg import dialect as postgresql_dialect
from sqlalchemy.dialects.postgresql.dml import Insert as PostgresInsert
from sqlalchemy.dialects.sqlite.dml import Insert as SQLiteInsert
from sqlalchemy.dialects.sqlite.pysqlite import dialect as sqlite_dialect
from sqlalchemy.engine import AdaptedConnection, Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.schema import CreateTable, DropTable
from sqlalchemy.sql.dml import Update
from sqlalchemy.types import TypeDecorator, TypeEngine

from churnsaver.backend.core.db import dialect_insert
from churnsaver.backend.core.repository import owned_by
from churnsaver.backend.core.unit_of_work import UnitOfWork

BATCH_PARAMETER = "batch_rows"

Insert = PostgresInsert | SQLiteInsert


def start_bulk_transaction(session: Session, table: Table) -> None:
    """Begin a batch's transaction the way each database needs for reads followed by bulk writes.

    SQLite: take the write lock first, with a write that changes nothing. A transaction that
    reads, then writes after another connection has committed, fails at once in WAL mode
    (SQLITE_BUSY_SNAPSHOT: no busy timeout applies); one that starts by writing waits its turn.
    PostgreSQL needs nothing: its rows are locked one by one as they are written.
    """
    if not _is_postgres(session.get_bind().dialect):
        key = next(iter(table.primary_key))
        session.execute(update(table).where(false()).values({key: key}))


def _is_postgres(dialect: Dialect) -> bool:
    return dialect.name == "postgresql"


def is_one_of(
    session: AsyncSession | Session, column: ColumnElement[Any] | QueryableAttribute[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """`column IN values` for a large batch of values, as one parameter rather than thousands,
    which cost more to render, send and plan than the look-up itself: an array unnested by
    PostgreSQL, a JSON array read by `json_each` on SQLite. The one way to test a batch of keys.

    PostgreSQL: as a subquery, never `= ANY(array)`, which a generic plan (chosen after five runs
    of a prepared statement) cannot hash: it compares each row with every key (docs/performance.md)."""
    dialect = session.get_bind().dialect
    if _is_postgres(dialect):
        unnested = func.unnest(bindparam(None, value=list(values), type_=ARRAY(column.type)))
        return column.in_(select(unnested))
    encode = _bind_processor(column.type, dialect)
    stored = [encode(value) for value in values] if encode else list(values)
    listed = func.json_each(bindparam(None, value=json.dumps(stored), type_=String())).table_valued("value")
    return column.in_(select(listed.c.value))


def merged_json(session: AsyncSession | Session, current: Any, incoming: Any) -> ColumnElement[Any]:
    """The JSON object `current` with the keys of `incoming` added or replaced."""
    if _is_postgres(session.get_bind().dialect):
        return cast(cast(current, JSONB).op("||")(cast(incoming, JSONB)), JSON)
    return func.json_patch(current, incoming)


def json_text(value: Any) -> str:
    """`value` as compact JSON text (`json_array` says why orjson, then json)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_array(rows: Sequence[Any]) -> str:
    """`rows` as one compact JSON text, for SQLite's `json_each`. orjson writes it several times
    faster than json; json writes what orjson refuses (integers beyond 64 bits, lone surrogates).
    A row's values are text, numbers and nulls, never infinities (which orjson writes as null)."""
    return json_text(rows)


class RowBatch:
    """A batch of rows for some of a table's columns, written by one bulk INSERT of one parameter
    (SQLite) or one parameter per column (PostgreSQL), whatever the number of rows. `constants`
    are columns with one value for the whole batch (the tenant, the batch time), bound once.

    The statement depends on the dialect and the columns only, never on the values, so a caller
    that writes often can build it once and keep it: building and keying a statement costs more
    than SQLite's own work for a few dozen rows."""

    def __init__(
        self,
        dialect: Dialect,
        table: Table,
        columns: Sequence[str],
        constants: Sequence[str] = (),
        *,
        stored_form: Sequence[str] = (),
    ) -> None:
        self.table = table
        self.columns = {name: table.c[name].type for name in columns}
        self.constants = tuple(constants)
        self.dialect = dialect
        self.is_postgres = _is_postgres(dialect)
        # SQLite: each value encoded by its column's bind processor. A JSON document (an object or
        # array) stays one inside the batch's JSON, which `json_extract` hands back as its text.
        # Columns in `stored_form` come as SQLite stores them (a UUID as 32 hex digits, which
        # PostgreSQL reads too): nothing to encode.
        self._json_columns = [name for name, kind in self.columns.items() if isinstance(kind, JSON)]
        self._encoders = [
            None if isinstance(kind, JSON) or name in stored_form else _bind_processor(kind, dialect)
            for name, kind in self.columns.items()
        ]

    def insert(self) -> Insert:
        """The INSERT of the batch's rows; the dialect's insert, so the caller can add ON CONFLICT
        and RETURNING."""
        fixed = [bindparam(name, type_=self.table.c[name].type) for name in self.constants]
        # WHERE true: without a WHERE clause, SQLite's parser cannot tell an upsert's ON CONFLICT
        # from a join's ON.
        rows = select(*self._columns(), *fixed).where(true())
        return dialect_insert(self.dialect)(self.table).from_select([*self.columns, *self.constants], rows)

    def update(self) -> Update:
        """The UPDATE setting, in each row of the table whose id is a batch row's, the batch row's
        other columns; the constants are bound by name, for the caller's WHERE clause. For
        PostgreSQL: SQLite's planner reads the batch again for each row it joins (`update_by_id`)."""
        rows = select(*self._columns()).subquery("batch_rows")
        return (
            update(self.table)
            .where(self.table.c.id == rows.c.id)
            .values({name: rows.c[name] for name in self.columns if name != "id"})
        )

    def _columns(self) -> list[ColumnElement[Any]]:
        if self.is_postgres:
            # A JSON column's values travel as text, cast back by the server: bound as an array
            # of JSON, a JSON array value would be read as a dimension of the array.
            bound = {name: String() if isinstance(kind, JSON) else kind for name, kind in self.columns.items()}
            arrays = [bindparam(_array(name), type_=ARRAY(kind)) for name, kind in bound.items()]
            unnested = func.unnest(*arrays).table_valued(*(column(name, kind) for name, kind in bound.items()))
            return [
                cast(value, kind).label(name) if isinstance(kind, JSON) else value
                for value, (name, kind) in zip(unnested.render_derived().c, self.columns.items(), strict=True)
            ]
        rows = func.json_each(bindparam(BATCH_PARAMETER, type_=String())).table_valued("value")
        return [func.json_extract(rows.c.value, f"$[{i}]").label(name) for i, name in enumerate(self.columns)]

    def parameters(self, rows: Sequence[Sequence[Any]], constants: Mapping[str, Any]) -> dict[str, Any]:
        """What `self.insert()` or `self.update()` runs with for `rows` (tuples of the columns'
        values, in column order) and the values of the constants."""
        if self.is_postgres:
            arrays = {_array(name): [row[i] for row in rows] for i, name in enumerate(self.columns)}
            for name in self._json_columns:
                arrays[_array(name)] = [None if value is None else json_text(value) for value in arrays[_array(name)]]
            return arrays | dict(constants)
        # The rows as one JSON array: one statement, run by SQLite in one call that releases the
        # GIL (a Python thread parsing the next batch runs meanwhile), where an executemany takes
        # it back after every row.
        if any(self._encoders):
            rows = [
                tuple(encode(value) if encode else value for encode, value in zip(self._encoders, row, strict=True))
                for row in rows
            ]
        return {BATCH_PARAMETER: json_array(rows)} | dict(constants)


def _array(name: str) -> str:
    """The parameter of column `name`'s values on PostgreSQL; not the column's own name, which an
    UPDATE keeps for its SET clause."""
    return f"{name}_values"


def _bind_processor(kind: TypeEngine[Any], dialect: Dialect) -> Any:
    return kind.dialect_impl(dialect).bind_processor(dialect)


def _is_datetime(kind: TypeEngine[Any]) -> bool:
    return isinstance(kind.impl_instance if isinstance(kind, TypeDecorator) else kind, DateTime)


class StagedRows(RowBatch):
    """A `RowBatch` of rows given as tuples in column order and already in their stored form: a
    JSON column's value is its text, a UUID is 32 hex digits. `encode` readies them for the
    database, without a session, so a caller can do it while an earlier batch is being written;
    `load` stages them in the transaction before the statement runs. Nothing is converted per
    value in Python but datetimes on SQLite.

    PostgreSQL: the rows are COPY'd (binary, encoded by asyncpg in C) into a temporary table
    dropped at commit. COPY is refused into a table under row-level security; the temporary table
    has none, only this transaction sees it, and the INSERT ... SELECT from it into the real table
    runs under the tenant's policies like any other write. SQLite: one JSON array, as `RowBatch`.
    """

    def __init__(self, dialect: Dialect, table: Table, columns: Sequence[str], constants: Sequence[str]) -> None:
        super().__init__(dialect, table, columns, constants)
        self.staging = Table(
            f"staged_{table.name}",
            MetaData(),
            *(Column(name, kind) for name, kind in self.columns.items()),
            prefixes=["TEMPORARY"],
            postgresql_on_commit="DROP",
        )
        # SQLite stores a datetime as text in its own format, which JSON cannot carry as is.
        self._datetimes = [
            (position, process)
            for position, kind in enumerate(self.columns.values())
            if _is_datetime(kind) and (process := kind.dialect_impl(dialect).bind_processor(dialect)) is not None
        ]

    def _columns(self) -> list[ColumnElement[Any]]:
        return list(self.staging.c) if self.is_postgres else super()._columns()

    def encode(self, rows: Sequence[Sequence[Any]]) -> Any:
        """`rows` as `load` takes them: as they are for PostgreSQL's COPY, one JSON text for SQLite."""
        if self.is_postgres:
            return rows
        for position, process in self._datetimes:
            if any(row[position] is not None for row in rows):  # most rows of most imports have none
                rows = [
                    row if row[position] is None else (*row[:position], process(row[position]), *row[position + 1 :])
                    for row in rows
                ]
        return json_array(rows)

    def load(self, session: Session, encoded: Any, constants: Mapping[str, Any]) -> dict[str, Any]:
        """Stage the rows `encode` gave (once per transaction); the parameters `self.insert()` runs with."""
        if not self.is_postgres:
            return {BATCH_PARAMETER: encoded} | dict(constants)
        session.execute(CreateTable(self.staging))
        columns = list(self.columns)
        # COPY is asyncpg's own, not a DB-API call: run on the session's connection, in its transaction.
        # On an async driver the DB-API connection is SQLAlchemy's adapter, typed as a plain one.
        connection = typing_cast(AdaptedConnection, session.connection().connection.dbapi_connection)
        connection.run_async(
            lambda driver: driver.copy_records_to_table(self.staging.name, records=encoded, columns=columns)
        )
        return dict(constants)


STORED_COUNT = "stored_count"


class InsertIfNew:
    """An INSERT of a batch's rows that skips those already stored (ON CONFLICT DO NOTHING) and
    tells which ones it stored, by `key` (a text column). Each row's `id` is given by the caller.

    `then`, given the number of rows stored as a SQL expression, builds an INSERT that follows in
    the same transaction (a counter's upsert): on PostgreSQL in the same statement, a round trip
    saved. Build one per dialect and keep it: building the statements costs more than running
    them for a few dozen rows."""

    def __init__(
        self,
        dialect: Dialect,
        table: Table,
        columns: Sequence[str],
        constants: Sequence[str],
        *,
        key: str,
        stored_form: Sequence[str] = (),
        then: Callable[[ColumnElement[int]], Any] | None = None,
    ) -> None:
        self.batch = RowBatch(dialect, table, columns, constants, stored_form=stored_form)
        self._key, self._id = list(columns).index(key), list(columns).index("id")
        insert = self.batch.insert().on_conflict_do_nothing()
        self._then: Any = None
        if self.batch.is_postgres:
            # The keys come back as text: returning ids would cost a UUID parsed per row.
            stored = insert.returning(table.c[key]).cte("stored")
            self._insert: Any = select(stored.c[key])
            if then is not None:
                count = select(func.count()).select_from(stored).scalar_subquery()
                self._insert = self._insert.add_cte(then(count).cte("then"))
            return
        self._insert = insert
        if then is not None:
            self._then = then(bindparam(STORED_COUNT, type_=Integer()))
        ids = func.json_each(bindparam("ids", type_=String())).table_valued("value")
        self._stored_keys = select(func.json_group_array(table.c[key])).where(table.c.id.in_(select(ids.c.value)))

    def write(
        self, work: UnitOfWork, rows: Sequence[Sequence[Any]], constants: Mapping[str, Any], then: Mapping[str, Any]
    ) -> set[str]:
        """Insert `rows` (in column order, no key twice) with the `constants`, and run `then` with
        its own values; the keys of the rows stored now."""
        if self.batch.is_postgres:
            return set(work.fetch_column(self._insert, self.batch.parameters(rows, {**constants, **then})))
        # SQLite: not by RETURNING, a step of SQLite's per row, each giving up the GIL and waiting
        # to take it back from the busy event loop. When the count of changes says every row was
        # stored, none is looked up; otherwise those holding this batch's ids, in one step.
        if work.execute(self._insert, self.batch.parameters(rows, constants)) == len(rows):
            stored = {row[self._key] for row in rows}
        else:
            ids = json_array([row[self._id] for row in rows])
            stored = set(orjson.loads(work.fetch_column(self._stored_keys, {"ids": ids})[0]))
        if self._then is not None:
            work.execute(self._then, {**constants, **then, STORED_COUNT: len(stored)})
        return stored


# The tenant of an update's rows, bound per batch: its statement is built once per table, so it
# cannot start from a repository (the named exemption from "every read starts from one").
TENANT = "batch_tenant_id"


@lru_cache(maxsize=32)
def _update_by_id(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> tuple[RowBatch, Any]:
    if not _is_postgres(dialect):
        return RowBatch(dialect, table, columns), table.update().where(
            table.c.tenant_id == bindparam(TENANT, type_=table.c.tenant_id.type), table.c.id == bindparam("row_id")
        )
    batch = RowBatch(dialect, table, columns)
    # Not named tenant_id: an UPDATE keeps its columns' names for its SET clause.
    return batch, batch.update().where(table.c.tenant_id == bindparam(TENANT, type_=table.c.tenant_id.type))


async def update_by_id(session: AsyncSession, model: Any, tenant_id: uuid.UUID, rows: list[dict[str, Any]]) -> None:
    """Set each row's other columns where `id` is the row's, within the tenant's rows; every row
    names the same columns, and no id comes twice.

    PostgreSQL: one `RowBatch` UPDATE ... FROM the rows, joined by id, where an executemany runs
    the UPDATE once per row. SQLite: the executemany, in SQLite's own loop, since its planner would
    read a JSON batch again for each of the tenant's rows (docs/performance.md)."""
    if not rows:
        return
    columns = tuple(rows[0])
    batch, statement = _update_by_id(session.get_bind().dialect, model.__table__, columns)
    if batch.is_postgres:
        values = [tuple(row[name] for name in columns) for row in rows]
        await session.execute(statement, batch.parameters(values, {TENANT: tenant_id}))
        return
    parameters = [
        {"row_id": row["id"], TENANT: tenant_id, **{k: v for k, v in row.items() if k != "id"}} for row in rows
    ]
    await (await session.connection()).execute(statement, parameters)


OnConflict = Callable[[Insert], Insert]


@lru_cache(maxsize=32)
def _row_insert(
    dialect: Dialect, table: Table, shared: tuple[str, ...], columns: tuple[str, ...], on_conflict: OnConflict | None
) -> tuple[RowBatch, Insert]:
    stored_form = [name for name in columns if isinstance(table.c[name].type, Uuid)]
    batch = RowBatch(dialect, table, columns, shared, stored_form=stored_form)
    insert = batch.insert()
    return batch, on_conflict(insert) if on_conflict else insert


async def insert_rows(
    session: AsyncSession,
    table: Table,
    shared: Mapping[str, Any],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    on_conflict: OnConflict | None = None,
) -> None:
    """Insert `rows` (values of `columns`, in order; ids as their hex text, JSON values as they
    are) into `table` in one statement, every row also holding `shared`, bound once. `on_conflict`
    adds an ON CONFLICT clause to the dialect's INSERT; keep it a module-level function.

    A `RowBatch`, not `StagedRows`: COPY's temporary table costs two more round trips, and most
    such writes (a real-time re-score) are of a few rows."""
    if not rows:
        return
    batch, statement = _row_insert(session.get_bind().dialect, table, tuple(shared), tuple(columns), on_conflict)
    await session.execute(statement, batch.parameters(rows, shared))


def upsert_counting_created(
    session: Session, upsert: Insert, parameters: Mapping[str, Any], *, tenant_id: uuid.UUID, created_at: datetime
) -> int:
    """Run `upsert`, an INSERT ... ON CONFLICT DO UPDATE of one tenant's rows that gives a row it
    creates the time `created_at` and keeps an updated row's, in a transaction begun by
    `start_bulk_transaction`; how many rows it created. Counted, not returned row by row: fetching
    a row per created row costs more than the upsert."""
    table = upsert.table
    if _is_postgres(session.get_bind().dialect):
        upserted = upsert.returning(table.c.created_at).cte("upserted")
        created = select(func.count()).select_from(upserted).where(upserted.c.created_at == created_at)
        return session.execute(created, parameters).scalar_one()
    session.execute(upsert, parameters)
    # SQLite: the transaction has held the write lock since it began, before `created_at`, so no
    # other row holds that time. Read from the (tenant, created_at, id) index alone.
    created = (
        select(func.count()).select_from(table).where(owned_by(tenant_id, table), table.c.created_at == created_at)
    )
    return session.execute(created).scalar_one()


class StagedText:
    """Rows staged into a temporary table from text encoded ahead, possibly in another process:
    `encode` needs only the dialect's name and runs without a database (an import's parsing
    worker); `load` puts the text into the transaction's temporary table, and statements read
    the rows from `table`. Nothing is converted per value in the writing process.

    Values are text (UUIDs as 32 hex digits, JSON as its text), dates, aware datetimes and nulls.
    PostgreSQL: COPY in its text format, parsed by the server (`StagedRows` says why a temporary
    table). SQLite: one JSON array of the rows, read by `json_each` into the temporary table on
    the writer's side of the connection, in C."""

    def __init__(self, name: str, columns: Sequence[Column[Any]]) -> None:
        self.table = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP")
        self._names = [column.name for column in columns]
        self._converters: dict[str, list[Callable[[Any], Any] | None]] = {}

    def _converters_for(self, dialect_name: str) -> list[Callable[[Any], Any] | None]:
        if dialect_name not in self._converters:
            dialect = sqlite_dialect() if dialect_name == "sqlite" else postgresql_dialect()
            self._converters[dialect_name] = [_text_converter(column.type, dialect) for column in self.table.c]
        return self._converters[dialect_name]

    def encode(self, dialect_name: str, rows: Sequence[Sequence[Any]]) -> bytes:
        """`rows` (tuples in column order) as `load` takes them on the dialect named."""
        converters = self._converters_for(dialect_name)
        if dialect_name == "sqlite":
            if any(converters):
                rows = [
                    tuple(
                        value if convert is None or value is None else convert(value)
                        for convert, value in zip(converters, row, strict=True)
                    )
                    for row in rows
                ]
            return orjson.dumps(rows)
        lines = [
            "\t".join(
                "\\N" if value is None else _copy_escaped(value if convert is None else convert(value))
                for convert, value in zip(converters, row, strict=True)
            )
            for row in rows
        ]
        return ("\n".join(lines) + "\n").encode() if lines else b""

    def load(self, session: Session, encoded: bytes) -> None:
        """Create the temporary table in the session's transaction and stage the rows in it."""
        session.execute(CreateTable(self.table))
        if session.get_bind().dialect.name == "sqlite":
            rows = func.json_each(bindparam(BATCH_PARAMETER, type_=String())).table_valued("value")
            values = select(*(func.json_extract(rows.c.value, f"$[{i}]") for i in range(len(self._names))))
            session.execute(self.table.insert().from_select(self._names, values), {BATCH_PARAMETER: encoded.decode()})
            return
        if not encoded:
            return
        connection = typing_cast(AdaptedConnection, session.connection().connection.dbapi_connection)
        connection.run_async(
            lambda driver: driver.copy_to_table(
                self.table.name, source=io.BytesIO(encoded), columns=self._names, format="text"
            )
        )
        # A temporary table has no statistics until analyzed: the planner would guess its size
        # and, joining or grouping it, pick a plan hundreds of times slower (docs/performance.md).
        session.execute(text(f"ANALYZE {self.table.name}"))

    def drop(self, session: Session) -> None:
        """Drop the table before the transaction ends (PostgreSQL drops it at commit itself)."""
        if session.get_bind().dialect.name == "sqlite":
            session.execute(DropTable(self.table))


def _text_converter(kind: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a value of `kind` is written as text for the dialect: a datetime as SQLite stores it
    (its type's own bind processing) or in ISO 8601; a date in ISO 8601; anything else as is."""
    if _is_datetime(kind):
        if dialect.name == "sqlite":
            return kind.bind_processor(dialect)
        return datetime.isoformat
    if isinstance(kind.impl_instance if isinstance(kind, TypeDecorator) else kind, Date):
        return date.isoformat
    return None


# COPY's text format: a backslash, and the tab, newline and carriage return that separate values
# and rows, are written as escapes.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_escaped(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text.translate(_COPY_ESCAPES) if ("\\" in text or "\t" in text or "\n" in text or "\r" in text) else text
