"""Keyset pagination over a (time, id) pair, with opaque cursors.

Customers page over (created_at, id), oldest first; a timeline pages over (occurred_at, id),
newest first: `KeysetOrder` names the pair and the direction.

When the caller wants the total count, the page and the count come back from one SQL statement:
the count is a one-row derived table, left-joined to the page, so even an empty page reports the
total. Counting costs a scan of the matching rows, so it is done only when asked for.
"""

import base64
import binascii
import uuid
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Label, Select, func, literal_column, select, true, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from churnsaver.backend.core.accepted_json import parse_timestamp
from churnsaver.backend.core.errors import InvalidInput

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

RowT = TypeVar("RowT")
KeyT = TypeVar("KeyT", bound=Hashable)

# Column labels of the batched statement (`keyset_pages`); unlike any model's column names.
BRANCH = "keyset_branch"
TOTAL = "keyset_total"


@dataclass(frozen=True, slots=True)
class Page(Generic[RowT]):
    rows: list[RowT]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None


@dataclass(frozen=True, slots=True)
class KeysetOrder:
    """The (time, id) pair a keyset walks, by the time column's name, and which way."""

    time_column: str = "created_at"
    descending: bool = False

    def sort_keys(self, columns: Any) -> list[ColumnElement[Any]]:
        """ORDER BY keys over `columns`: a model, or a subquery's `.c`."""
        keys = [getattr(columns, self.time_column), columns.id]
        return [key.desc() for key in keys] if self.descending else keys

    def after(self, model: type[Any], position: tuple[datetime, uuid.UUID]) -> ColumnElement[bool]:
        # A row-value comparison: both backends turn it into an index range on (time, id); the
        # equivalent OR of two conditions makes them read every row before the cursor.
        row = tuple_(getattr(model, self.time_column), model.id)
        return row < position if self.descending else row > position

    def cursor(self, row: Any) -> str:
        return encode_cursor(getattr(row, self.time_column), row.id)


OLDEST_FIRST = KeysetOrder()


def encode_cursor(moment: datetime, record_id: uuid.UUID) -> str:
    raw = f"{moment.isoformat()}|{record_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, record_id = raw.split("|")
        # A time the stores can compare: aware, and within years 1 to 9999 once in UTC.
        return parse_timestamp(moment, "after"), uuid.UUID(record_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):  # UnacceptableInput is a ValueError
        raise InvalidInput("invalid cursor") from None


def clamp_page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0:
        raise InvalidInput("`first` must not be negative")
    return min(first, MAX_PAGE_SIZE)


async def keyset_page(
    session: AsyncSession,
    statement: Select[Any],
    model: type[Any],
    *,
    first: int | None,
    after: str | None,
    with_total: bool = True,
    order: KeysetOrder = OLDEST_FIRST,
) -> Page[Any]:
    """Page through `statement` (a select of `model`, already filtered) in `order`."""
    size = clamp_page_size(first)
    page_statement = _page_statement(statement, model, order, size, _position(after))
    if with_total:
        rows, total_count = await _page_with_total(session, statement, page_statement, model, order)
    else:
        rows, total_count = list((await session.execute(page_statement)).scalars()), None
    return _page(rows, size, after, total_count, order)


async def keyset_pages(
    session: AsyncSession,
    statements: Mapping[KeyT, Select[Any]],
    model: type[Any],
    *,
    first: int | None,
    after: str | None,
    with_total: bool = True,
    order: KeysetOrder = OLDEST_FIRST,
) -> dict[KeyT, Page[Any]]:
    """The same page of several statements (each customer's timeline, say) from one SQL statement.

    Each statement is paged on its own, as `keyset_page` would, and the branches are joined with
    UNION ALL: every branch still reads only its own index range, where a window function over
    all the statements' rows would read each of them in full.
    """
    size, position = clamp_page_size(first), _position(after)
    branches = [
        _branch(index, statement, _page_statement(statement, model, order, size, position), with_total)
        for index, statement in enumerate(statements.values())
    ]
    if not branches:
        return {}
    combined = union_all(*branches).subquery("pages")
    row = aliased(model, combined)
    columns = [combined.c[BRANCH], combined.c[TOTAL]] if with_total else [combined.c[BRANCH]]
    results = await session.execute(select(*columns, row).order_by(combined.c[BRANCH], *order.sort_keys(combined.c)))
    rows: defaultdict[int, list[Any]] = defaultdict(list)
    totals: dict[int, int] = {}
    for result in results:
        if with_total:
            totals[result[0]] = result[1]
        if result[-1] is not None:
            rows[result[0]].append(result[-1])
    return {
        key: _page(rows[index], size, after, totals.get(index, 0) if with_total else None, order)
        for index, key in enumerate(statements)
    }


def _position(after: str | None) -> tuple[datetime, uuid.UUID] | None:
    return decode_cursor(after) if after is not None else None


def _page_statement(
    statement: Select[Any], model: type[Any], order: KeysetOrder, size: int, position: tuple[datetime, uuid.UUID] | None
) -> Select[Any]:
    if position is not None:
        statement = statement.where(order.after(model, position))
    return statement.order_by(*order.sort_keys(model)).limit(size + 1)


def _page(rows: Sequence[Any], size: int, after: str | None, total_count: int | None, order: KeysetOrder) -> Page[Any]:
    shown = list(rows[:size])
    return Page(
        rows=shown,
        cursors=[order.cursor(row) for row in shown],
        has_next_page=len(rows) > size,
        has_previous_page=after is not None,
        total_count=total_count,
    )


def _total(statement: Select[Any], name: str | None = "total") -> Any:
    return select(func.count().label(TOTAL)).select_from(statement.order_by(None).subquery()).subquery(name)


async def _page_with_total(
    session: AsyncSession, statement: Select[Any], page_statement: Select[Any], model: type[Any], order: KeysetOrder
) -> tuple[list[Any], int]:
    page = page_statement.subquery("page")
    total = _total(statement)
    row = aliased(model, page)
    combined = select(total.c[TOTAL], row).select_from(total).outerjoin(page, true()).order_by(*order.sort_keys(page.c))
    results = (await session.execute(combined)).all()
    return [result[1] for result in results if result[1] is not None], results[0][0]


def _branch(index: int, statement: Select[Any], page_statement: Select[Any], with_total: bool) -> Select[Any]:
    """One statement's page, tagged with its index (inlined: our own small integer, no parameter
    whose type PostgreSQL would have to guess in a UNION); with the total, as `_page_with_total`."""
    page = page_statement.subquery()
    branch: Label[int] = literal_column(str(index)).label(BRANCH)
    if not with_total:
        return select(branch, *page.c)
    total = _total(statement, name=None)
    return select(branch, total.c[TOTAL], *page.c).select_from(total).outerjoin(page, true())
