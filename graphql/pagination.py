"""Relay connections built from keyset pages (backend/pagination.py)."""

from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from strawberry import relay

from churnsaver.backend.pagination import Page

ConnectionT = TypeVar("ConnectionT")


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


def connection_from_page(
    connection_type: type[ConnectionT], page: Page[Any], node_from_row: Callable[[Any], Any]
) -> ConnectionT:
    edges = [
        relay.Edge(cursor=cursor, node=node_from_row(row)) for row, cursor in zip(page.rows, page.cursors, strict=True)
    ]
    return connection_type(
        edges=edges,
        page_info=relay.PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        # Not computed unless the query selected it, and then never read.
        total_count=page.total_count if page.total_count is not None else -1,
    )
