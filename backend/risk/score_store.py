"""Writing scores in bulk: each chunk's rows reach a table in one INSERT ... SELECT.

The rows travel as one JSON array parameter that the database unpacks itself (SQLite
`json_each`, PostgreSQL `json_array_elements`); what every row shares (tenant, model version,
as of, ...) is bound once. Executemany of the same rows binds and converts every value of every
row in Python (SQLAlchemy's type processing, asyncpg's per-row protocol messages): at 100,000
scores that cost more than the rest of scoring. COPY is not an option on PostgreSQL: it refuses
tables under row-level security, which every tenant table is.

Values in the rows are JSON: ids as their hex text (how SQLite stores a UUID, and a form
PostgreSQL's uuid input reads), numbers, text, and JSON values for JSON columns.
"""

import json
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, ColumnElement, Table, any_, bindparam, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.sqltypes import NullType

import churnsaver.tenants.models  # noqa: F401  (the `tenants` table the tenant_id keys refer to)


async def insert_rows(
    session: AsyncSession,
    table: Table,
    shared: dict[str, Any],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    conflict: str = "",
) -> None:
    """Insert `rows` (values of `columns`, in order) into `table`, every row also holding
    `shared` (column -> value, converted by the column's type). `conflict` is an optional
    `ON CONFLICT ...` clause, the same text on both backends."""
    if not rows:
        return
    dialect = session.bind.dialect
    postgres = dialect.name == "postgresql"
    names = [*shared, *columns]
    values = [_bound(table, name, dialect, cast=postgres) for name in shared]
    for position, name in enumerate(columns):
        column_type = _column_type(table, name)
        if not postgres:
            values.append(f"json_extract(value, '$[{position}]')")
        elif isinstance(column_type, JSON):
            values.append(f"CAST(value -> {position} AS {column_type.compile(dialect=dialect)})")
        else:
            values.append(f"CAST(value ->> {position} AS {column_type.compile(dialect=dialect)})")
    source = "json_array_elements(CAST(:rows AS json))" if postgres else "json_each(:rows)"
    # "WHERE true": SQLite otherwise reads ON CONFLICT as part of the SELECT's join syntax.
    statement = text(
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(values)} FROM {source} WHERE true {conflict}"
    )
    # Ids are bound as their hex text, like the ids in the rows (the Uuid type is not applied to
    # a text() parameter on SQLite); other values through their column's type.
    values_of = {name: value.hex if isinstance(value, uuid.UUID) else value for name, value in shared.items()}
    typed = (
        bindparam(name, type_=_column_type(table, name)) for name in shared if not isinstance(shared[name], uuid.UUID)
    )
    statement = statement.bindparams(*typed)
    await session.execute(statement, {"rows": orjson.dumps(rows).decode(), **values_of})


def _bound(table: Table, name: str, dialect: Any, *, cast: bool) -> str:
    # PostgreSQL infers no type for a parameter in a SELECT list: it would insert text.
    return f"CAST(:{name} AS {_column_type(table, name).compile(dialect=dialect)})" if cast else f":{name}"


def _column_type(table: Table, name: str) -> Any:
    """The column's type; a foreign key declared without one takes its target's, which SQLAlchemy
    fills in only once the target's table is known (hence the `tenants.models` import)."""
    column = table.c[name]
    if isinstance(column.type, NullType) and column.foreign_keys:
        return next(iter(column.foreign_keys)).column.type
    return column.type


def among(session: AsyncSession, column: Any, ids: Sequence[uuid.UUID]) -> ColumnElement[bool]:
    """`column IN ids` with the ids as one parameter (a PostgreSQL array, a JSON array that SQLite
    unpacks): an IN list of a chunk's 20,000 ids costs SQLAlchemy most of a second to expand."""
    if session.bind.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(column.type)))
    listed = func.json_each(json.dumps([customer_id.hex for customer_id in ids])).table_valued("value")
    return column.in_(select(literal_column("value")).select_from(listed))
