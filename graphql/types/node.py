"""Relay plumbing shared by node types: opaque global ids that decode to our UUIDs."""

import uuid
from collections.abc import Iterable
from typing import Any

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


def uuids(node_ids: Iterable[str]) -> list[uuid.UUID | None]:
    parsed: list[uuid.UUID | None] = []
    for node_id in node_ids:
        try:
            parsed.append(uuid.UUID(node_id))
        except ValueError:
            parsed.append(None)
    return parsed


async def load_nodes(loader: Any, node_ids: Iterable[str]) -> list[Any]:
    ids = uuids(node_ids)
    found = await loader.load_many([i for i in ids if i is not None])
    by_id = {i: row for i, row in zip([i for i in ids if i is not None], found, strict=True)}
    return [by_id.get(i) if i is not None else None for i in ids]
