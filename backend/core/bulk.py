"""Bulk writes: one INSERT or UPDATE per batch of rows, built and run by a `RowBatch`.

SQLAlchemy's executemany runs every parameter of every row through its general machinery, which
for a large import costs more than the database's own work. Here a batch is one statement and
one round trip: on PostgreSQL each column is bound once, as an array, unnested by the server; on
SQLite the rows are bound as one JSON array, read by `json_each`. The values every row shares
(the tenant, the batch time) are bound once. `StagedRows` goes further for the largest batches:
rows already in their stored form, copied in without any per-value work in Python.
"""

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    DateTime,
    MetaData,
    String,
    Table,
    bindparam,
    column,
    false,
    func,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql.dml import Insert as PostgresInsert
from sqlalchemy.dialects.sqlite.dml import Insert as SQLiteInsert
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.dml import Update
from sqlalchemy.types import TypeDecorator, TypeEngine

from churnsaver.backend.core.db import dialect_insert

BATCH_PARAMETER = "batch_rows"

Insert = PostgresInsert | SQLiteInsert


def start_bulk_transaction(session: Session, table: Table) -> None:
    """Begin a batch's transaction the way each database needs for reads followed by bulk writes.

    SQLite: take the write lock first, with a write that changes nothing. A transaction that
    reads, then writes after another connection has committed, fails at once in WAL mode
    (SQLITE_BUSY_SNAPSHOT: no busy timeout applies); one that starts by writing waits its turn.
    PostgreSQL needs nothing: its rows are locked one by one as they are written.
    """
    if session.bind.dialect.name != "postgresql":
        key = next(iter(table.primary_key))
        session.execute(update(table).where(false()).values({key: key}))


def is_one_of(session: Session, column: ColumnElement[Any], values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN values` for a large batch of text values, as one parameter rather than thousands,
    which cost more to render, send and plan than the look-up itself: an array unnested by
    PostgreSQL, a JSON array read by `json_each` on SQLite.

    PostgreSQL: as a subquery, not `= ANY(array)`. After five runs of a prepared statement the
    server may switch to a generic plan, which cannot hash an array parameter: where no index
    serves, it compares each row with every key, and a batch of milliseconds takes seconds. The
    unnested rows are hashed or probed one by one under any plan. (Forcing custom plans for the
    whole transaction instead made every foreign-key check of a bulk upsert plan its query anew:
    half of a 20,000-customer upsert's time.)"""
    if session.bind.dialect.name == "postgresql":
        listed = func.unnest(bindparam(None, value=list(values), type_=ARRAY(column.type)))
        return column.in_(select(listed))
    listed = func.json_each(bindparam(None, value=json.dumps(list(values)), type_=String())).table_valued("value")
    return column.in_(select(listed.c.value))


def json_array(rows: Sequence[Any]) -> str:
    """`rows` as one compact JSON text, for SQLite's `json_each`. orjson writes it several times
    faster than json; json writes what orjson refuses (integers beyond 64 bits, lone surrogates).
    A row's values are text, numbers and nulls, never infinities (which orjson writes as null)."""
    try:
        return orjson.dumps(rows).decode()
    except orjson.JSONEncodeError:
        return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


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
        self.is_postgres = dialect.name == "postgresql"
        # SQLite: each value encoded by its column's bind processor. A JSON document (an object or
        # array) stays one inside the batch's JSON, which `json_extract` hands back as its text.
        # Columns in `stored_form` come as SQLite stores them (a UUID as 32 hex digits, which
        # PostgreSQL reads too): nothing to encode.
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
            arrays = [bindparam(_array(name), type_=ARRAY(kind)) for name, kind in self.columns.items()]
            unnested = func.unnest(*arrays).table_valued(*(column(name, kind) for name, kind in self.columns.items()))
            return list(unnested.render_derived().c)
        rows = func.json_each(bindparam(BATCH_PARAMETER, type_=String())).table_valued("value")
        return [func.json_extract(rows.c.value, f"$[{i}]").label(name) for i, name in enumerate(self.columns)]

    def parameters(self, rows: Sequence[Sequence[Any]], constants: Mapping[str, Any]) -> dict[str, Any]:
        """What `self.insert()` or `self.update()` runs with for `rows` (tuples of the columns'
        values, in column order) and the values of the constants."""
        if self.is_postgres:
            return {_array(name): [row[i] for row in rows] for i, name in enumerate(self.columns)} | dict(constants)
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
            (position, kind.dialect_impl(dialect).bind_processor(dialect))
            for position, kind in enumerate(self.columns.values())
            if _is_datetime(kind)
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
        connection = session.connection().connection.dbapi_connection
        connection.run_async(
            lambda driver: driver.copy_records_to_table(self.staging.name, records=encoded, columns=columns)
        )
        return dict(constants)
