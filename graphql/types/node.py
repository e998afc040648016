"""Relay plumbing shared by node types: opaque global ids that decode to our UUIDs."""

import uuid
from collections.abc import Iterable
from typing import Any, ClassVar

import strawberry
from strawberry import relay

from churnsaver.backend.errors import NotFound


def parse_node_uuid(global_id: relay.GlobalID | str, expected_type: str) -> uuid.UUID:
    """The UUID behind a global id of `expected_type`; anything else is simply "not found"."""
    try:
        parsed = global_id if isinstance(global_id, relay.GlobalID) else relay.GlobalID.from_id(global_id)
        if parsed.type_name != expected_type:
            raise ValueError(parsed.type_name)
        return uuid.UUID(parsed.node_id)
    except (ValueError, TypeError):
        raise NotFound(expected_type) from None


def _uuid_or_none(node_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(node_id)
    except ValueError:
        return None


class RowNode(relay.Node):
    """A node type wrapping one database row; `loader` names its dataloader on the context."""

    row: strawberry.Private[Any]
    loader: ClassVar[str]

    @classmethod
    def from_row(cls, row: Any) -> "RowNode":
        return cls(row=row)

    @classmethod
    def resolve_id(cls, root: "RowNode", *, info: strawberry.Info) -> str:
        return str(root.row.id)

    @classmethod
    async def resolve_nodes(
        cls, *, info: strawberry.Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Any]:
        ids = [_uuid_or_none(node_id) for node_id in node_ids]
        valid = [i for i in ids if i is not None]
        rows = dict(zip(valid, await getattr(info.context.loaders, cls.loader).load_many(valid), strict=True))
        return [cls.from_row(rows[i]) if i is not None and rows[i] is not None else None for i in ids]
