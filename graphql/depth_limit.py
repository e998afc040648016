"""A depth limit that counts every field, introspection's included.

Strawberry's QueryDepthLimiter skips fields whose names start with `__`, and everything below
them: `__type { ofType { ofType { … } } }` went unchecked at any depth. This rule counts them too,
with a ceiling no lower than the standard introspection query's own depth, so GraphiQL's schema
query still passes.
"""

from collections.abc import Mapping

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_introspection_query,
    parse,
)


def _deepest(
    selections: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    depth: int,
    ceiling: int,
    visited: frozenset[str] = frozenset(),
) -> int:
    """The depth of the deepest field with selections under `selections` (which sit at `depth`);
    stops going down once past `ceiling`. A field with selections is one level, as Strawberry counts."""
    if depth > ceiling:
        return depth
    deepest = depth
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            if selection.selection_set is not None:
                deepest = max(deepest, _deepest(selection.selection_set, fragments, depth + 1, ceiling, visited))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _deepest(selection.selection_set, fragments, depth, ceiling, visited))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in visited:
                deepest = max(deepest, _deepest(fragment.selection_set, fragments, depth, ceiling, visited | {name}))
        if deepest > ceiling:
            break
    return deepest


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {node.name.value: node for node in document.definitions if isinstance(node, FragmentDefinitionNode)}


def operation_depth(document: DocumentNode, ceiling: int = 10_000) -> int:
    """The depth of the document's deepest operation."""
    fragments = _fragments(document)
    operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    return max((_deepest(operation.selection_set, fragments, 0, ceiling) for operation in operations), default=0)


STANDARD_INTROSPECTION_DEPTH = operation_depth(
    parse(
        get_introspection_query(
            descriptions=True,
            specified_by_url=True,
            directive_is_repeatable=True,
            schema_description=True,
            input_value_deprecation=True,
        )
    )
)


def depth_limit_counting_introspection(max_depth: int) -> type[ValidationRule]:
    """A validation rule refusing operations deeper than `max_depth`, or than the standard
    introspection query if that is deeper, counting every field."""
    ceiling = max(max_depth, STANDARD_INTROSPECTION_DEPTH)

    class DepthLimitCountingIntrospection(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: object) -> None:
            fragments = _fragments(self.context.document)
            if _deepest(node.selection_set, fragments, 0, ceiling) > ceiling:
                name = node.name.value if node.name else "anonymous"
                self.report_error(GraphQLError(f"'{name}' exceeds maximum operation depth of {ceiling}", node))

    return DepthLimitCountingIntrospection
