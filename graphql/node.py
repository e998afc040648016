"""The Node interface: every object with an opaque global id (base64 of "Type:uuid", as Relay has it).

Ids are plain data, set when a node is built from its row: a page of 100 nodes would otherwise
run 100 id resolvers.
"""

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Self

import strawberry
from strawberry.relay import from_base64, to_base64
from strawberry.types import get_object_definition

from churnsaver.backend.core.errors import NotFound


@strawberry.interface(name="Node", description="An object with a globally unique, opaque id.")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque; pass it to `node(id:)` to fetch the object again.")


def parse_global_id(global_id: str) -> tuple[str, uuid.UUID]:
    """The type name and UUID behind a global id; anything malformed is "not found"."""
    try:
        type_name, node_id = from_base64(global_id)
        return type_name, uuid.UUID(node_id)
    except (ValueError, TypeError):
        raise NotFound("node") from None


def parse_node_uuid(global_id: str, expected_type: str) -> uuid.UUID:
    """The UUID behind a global id of `expected_type`; any other id is "<type> not found"."""
    try:
        type_name, node_uuid = parse_global_id(global_id)
    except NotFound:
        raise NotFound(expected_type) from None
    if type_name != expected_type:
        raise NotFound(expected_type)
    return node_uuid


class RowNode(Node):
    """A node type wrapping one database row; `loader` names its dataloader on the context."""

    row: strawberry.Private[Any]
    loader: ClassVar[str]

    if TYPE_CHECKING:
        # The __init__ each node type's @strawberry.type generates; mypy cannot see it on this undecorated base.
        def __init__(self, *, row: Any, id: strawberry.ID) -> None: ...

    @classmethod
    def global_id(cls, row: Any) -> strawberry.ID:
        return strawberry.ID(to_base64(get_object_definition(cls, strict=True).name, row.id))

    @classmethod
    def from_row(cls, row: Any) -> Self:
        return cls(row=row, id=cls.global_id(row))

    @classmethod
    async def resolve_nodes(cls, info: strawberry.Info, node_ids: Iterable[uuid.UUID]) -> list[Self | None]:
        ids = list(node_ids)
        rows = await getattr(info.context.loaders, cls.loader).load_many(ids)
        return [cls.from_row(row) if row is not None else None for row in rows]
