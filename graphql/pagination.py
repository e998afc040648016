"""Relay connections, built from keyset pages (backend/core/pagination.py)."""

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry

from churnsaver.backend.core.pagination import Page

NodeT = TypeVar("NodeT")


@strawberry.type(description="Where a page sits in its connection.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None = strawberry.field(description="Pass it as `after` to fetch the next page.")


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Every item the connection holds, across all pages.")


def selects_total_count(info: strawberry.Info) -> bool:
    """Whether the query asks this connection field for `totalCount` (directly or in a fragment)."""

    def walk(selections: list[Any]) -> bool:
        for selection in selections:
            if getattr(selection, "name", None) == "totalCount":
                return True
            if walk(getattr(selection, "selections", None) or []):
                return True
        return False

    return walk(info.selected_fields[0].selections)


def connection_from_page(page: Page[Any], node_from_row: Callable[[Any], NodeT]) -> Connection[NodeT]:
    return Connection(
        edges=[
            Edge(cursor=cursor, node=node_from_row(row)) for row, cursor in zip(page.rows, page.cursors, strict=True)
        ],
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        # Counted only when the query selected it; otherwise never read.
        total_count=page.total_count if page.total_count is not None else -1,
    )
