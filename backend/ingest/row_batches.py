"""Bulk writes for imports: one statement per batch of rows, reading them from a `RowBatch`.

SQLAlchemy's executemany runs every parameter of every row through its general machinery, which
for a large import costs more than the database's own work. A bulk statement here selects its
rows from `RowBatch.rows()` instead. On PostgreSQL each column is bound once, as an array,
and unnested by the server: a batch is one statement and one round trip. On SQLite the statement
is compiled once and run by the driver's executemany, each value encoded by its column's bind
processor, and the values every row shares (the tenant, the batch time) encoded once.
"""

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    Row,
    Subquery,
    Table,
    any_,
    bindparam,
    column,
    false,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.type_api import TypeEngine


async def start_bulk_transaction(session: AsyncSession, table: Table) -> None:
    """Begin a batch's transaction the way each database needs for reads followed by bulk writes.

    SQLite: take the write lock first, with a write that changes nothing. A transaction that
    reads, then writes after another connection has committed, fails at once in WAL mode
    (SQLITE_BUSY_SNAPSHOT: no busy timeout applies); one that starts by writing waits its turn.

    PostgreSQL: plan every execution for its parameters. After five runs of a prepared
    statement it may switch to a generic plan, which cannot hash an `is_one_of` array: it
    compares each row with every key, and a batch that took milliseconds takes seconds.
    """
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    else:
        key = next(iter(table.primary_key))
        await session.execute(update(table).where(false()).values({key: key}))


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

    async def execute(
        self, session: AsyncSession, statement: Executable, rows: Sequence[Mapping[str, Any]]
    ) -> Sequence[Row[Any]]:
        """Run `statement`, built on `self.rows()`, for `rows` (mappings holding every column).

        What it returns is returned on PostgreSQL only: SQLite's executemany returns no rows.
        """
        if not rows:
            return []
        if self.is_postgres:
            result = await session.execute(statement, {name: [row[name] for row in rows] for name in self.columns})
            return result.all() if result.returns_rows else []
        compiled = statement.compile(dialect=self.dialect)
        # One sequence per parameter position, zipped into rows at C speed: a row value encoded
        # by its column's bind processor, or the statement's own value, encoded once and repeated.
        positions: list[Iterable[Any]] = []
        for name in compiled.positiontup or ():
            parameter = compiled.binds[name]
            process = parameter.type.dialect_impl(self.dialect).bind_processor(self.dialect)
            if name in self.columns:
                values = [row[name] for row in rows]
                positions.append(list(map(process, values)) if process else values)
            else:
                value = parameter.effective_value
                positions.append(itertools.repeat(process(value) if process else value, len(rows)))
        connection = await session.connection()
        await connection.exec_driver_sql(compiled.string, list(zip(*positions, strict=True)))
        return []
