"""Bulk writes for imports: one statement per batch of rows, reading them from a `RowBatch`.

SQLAlchemy's executemany runs every parameter of every row through its general machinery, which
for a large import costs more than the database's own work. A bulk statement here selects its
rows from `RowBatch.rows()` instead. On PostgreSQL each column is bound once, as an array,
and unnested by the server: a batch is one statement and one round trip. On SQLite the statement
is compiled once and run by the driver's executemany, each value encoded by its column's bind
processor, and the values every row shares (the tenant, the batch time) encoded once.
"""

import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Executable, Subquery, any_, bindparam, column, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.type_api import TypeEngine


def ordered_uuid() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): the millisecond first, then random bits.

    Rows with time-ordered keys are appended to their indexes instead of landing on random pages;
    with random UUIDs, a large import into SQLite runs several times slower. (uuid.uuid7 arrives
    with Python 3.14.)
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10))
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    return uuid.UUID(int=value)


async def plan_each_execution(session: AsyncSession) -> None:
    """For the rest of this transaction, let PostgreSQL plan every execution for its parameters.

    After five runs of a prepared statement PostgreSQL may switch to a generic plan. For a
    look-up by an array of thousands of keys (`is_one_of`), the generic plan cannot hash the
    array, so it compares each row with every key, and a batch that took milliseconds takes
    seconds. SQLite plans per statement: nothing to do there.
    """
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def is_one_of(session: AsyncSession, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values` for a large batch of values: on PostgreSQL one array parameter rather
    than thousands of parameters, which cost more to send and plan than the look-up itself."""
    if session.bind.dialect.name == "postgresql":
        return column == any_(bindparam(None, value=list(values), type_=ARRAY(column.type)))
    return column.in_(values)


class RowBatch:
    """A batch of rows with the given columns, as a subquery a bulk statement can select from."""

    def __init__(self, session: AsyncSession, columns: Mapping[str, TypeEngine[Any]]) -> None:
        self.columns = dict(columns)
        self.dialect = session.bind.dialect
        self.is_postgres = self.dialect.name == "postgresql"

    def rows(self) -> Subquery:
        """The batch as a subquery. A statement selecting from it must have a WHERE clause (if
        only `WHERE true`): without one, SQLite's parser cannot tell an upsert's ON CONFLICT
        from a join's ON."""
        if self.is_postgres:
            arrays = [bindparam(name, type_=ARRAY(kind)) for name, kind in self.columns.items()]
            unnested = func.unnest(*arrays).table_valued(*(column(name, kind) for name, kind in self.columns.items()))
            return select(*unnested.render_derived().c).subquery("batch")
        parameters = (bindparam(name, type_=kind).label(name) for name, kind in self.columns.items())
        return select(*parameters).subquery("batch")

    async def execute(self, session: AsyncSession, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run `statement`, built on `self.rows()`, for `rows` (mappings holding every column)."""
        if not rows:
            return
        if self.is_postgres:
            await session.execute(statement, {name: [row[name] for row in rows] for name in self.columns})
            return
        compiled = statement.compile(dialect=self.dialect)
        template: list[Any] = []  # the statement's own values, encoded once; row values fill the gaps
        row_slots: list[tuple[int, str, Any]] = []  # (position, column, bind processor or None)
        for position, name in enumerate(compiled.positiontup or ()):
            parameter = compiled.binds[name]
            process = parameter.type.dialect_impl(self.dialect).bind_processor(self.dialect)
            if name in self.columns:
                template.append(None)
                row_slots.append((position, name, process))
            else:
                value = parameter.effective_value
                template.append(process(value) if process else value)
        parameters = []
        for row in rows:
            values = template.copy()
            for position, name, process in row_slots:
                values[position] = process(row[name]) if process else row[name]
            parameters.append(tuple(values))
        connection = await session.connection()
        await connection.exec_driver_sql(compiled.string, parameters)
