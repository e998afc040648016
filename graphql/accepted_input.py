"""GraphQL inputs held to the edge's one definition of acceptable values (backend/core/accepted_json.py).

Variables arrive as JSON and are checked with the request (graphql/view.py). What remains is what
the document itself carries and what a scalar makes of a value:

- `AcceptedStringLiterals`: a validation rule refusing any string literal (an argument, an input
  field, a list item, a variable's default) holding a NUL or a lone surrogate, naming where it sits;
- `DATETIME`: the DateTime scalar, read as `parse_timestamp` reads timestamps (ISO 8601 with a
  timezone, within years 1 to 9999 once in UTC) and handed to resolvers in UTC.

Both refuse with an `UnacceptableInput`, which GraphQL reports as BAD_USER_INPUT (graphql/errors.py).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import strawberry

from churnsaver.backend.core.accepted_json import UnacceptableInput, check_text, parse_timestamp
from graphql import (
    ArgumentNode,
    DirectiveNode,
    FieldNode,
    GraphQLError,
    ListValueNode,
    ObjectFieldNode,
    StringValueNode,
    ValidationRule,
    VariableDefinitionNode,
)


class AcceptedStringLiterals(ValidationRule):
    """Refuses a string literal no store can hold, wherever it sits in the document."""

    def enter_string_value(
        self, node: StringValueNode, _key: Any, parent: Any, path: Sequence[str | int], ancestors: Sequence[Any]
    ) -> None:
        try:
            check_text(node.value, "")
        except UnacceptableInput as refusal:
            named = UnacceptableInput(_where(node_chain=[*ancestors, parent], path=path), refusal.reason)
            self.report_error(GraphQLError(str(named), node, original_error=named))


def _where(node_chain: Sequence[Any], path: Sequence[str | int]) -> str:
    """`customers.filter.search`, `createApiKey.input.scopes[1]`, `$name` or `@directive.argument`."""
    parts: list[str] = []
    for index, node in enumerate(node_chain):
        if isinstance(node, FieldNode):
            parts = [node.name.value]
        elif isinstance(node, DirectiveNode):
            parts = [f"@{node.name.value}"]
        elif isinstance(node, VariableDefinitionNode):
            parts = [f"${node.variable.name.value}"]
        elif isinstance(node, ArgumentNode | ObjectFieldNode):
            parts.append(node.name.value)
        elif isinstance(node, ListValueNode) and parts:
            parts[-1] += f"[{path[index + 1]}]"
    return ".".join(parts)


def _parse_datetime(value: Any) -> datetime:
    return parse_timestamp(value, "")


def _serialize_datetime(value: datetime) -> str:
    return value.isoformat()


DATETIME = strawberry.scalar(
    name="DateTime",
    description="Date with time, ISO 8601 with a timezone (2026-01-31T09:30:00Z); within years 1 to 9999 in UTC.",
    serialize=_serialize_datetime,
    parse_value=_parse_datetime,
)
