"""Schema extensions: the operation's unit of work, the limits every request is held to, error codes
and masking."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from strawberry import Info
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    FieldExtension,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.field_extension import AsyncExtensionResolver, SyncExtensionResolver
from strawberry.schema.exceptions import CannotGetOperationTypeError

from churnsaver.backend.core.config import Environment, Settings
from churnsaver.graphql.accepted_input import AcceptedStringLiterals
from churnsaver.graphql.context import operation_session, operation_session_turn
from churnsaver.graphql.depth_limit import depth_limit_counting_introspection
from churnsaver.graphql.errors import MaskUnexpectedErrors, ValidationErrorCodes
from graphql import ASTValidationRule, OperationDefinitionNode


class UnitOfWork(SchemaExtension):
    """One tenant session per operation, committed when it succeeds and rolled back otherwise."""

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        tenant_id = context.subject.tenant_id if context.subject else None
        async with context.db.tenant_session(tenant_id) as session:
            token = operation_session.set(session)
            turn = operation_session_turn.set(asyncio.Lock())
            try:
                yield
                result = self.execution_context.result
                if result is not None and not getattr(result, "errors", None):
                    await session.commit()
                else:
                    await session.rollback()
            finally:
                operation_session_turn.reset(turn)
                operation_session.reset(token)


class OneSessionAtATime(FieldExtension):
    """On every query root field: its resolver uses the operation's session only in its turn."""

    def resolve(self, next_: SyncExtensionResolver, source: Any, info: Info, **kwargs: Any) -> Any:
        return next_(source, info, **kwargs)  # a synchronous resolver issues no statement

    async def resolve_async(self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any) -> Any:
        async with operation_session_turn.get():
            return await next_(source, info, **kwargs)


class OperationNameRequired(CannotGetOperationTypeError):
    """A document with several operations and no operationName: Strawberry would run the first."""

    def __init__(self) -> None:
        super().__init__(None)

    def as_http_error_reason(self) -> str:
        return "the document holds several operations: name the one to run in operationName"


class OneOperationOrItsName(SchemaExtension):
    """Refuses (400, through the view) a document of several operations sent without operationName."""

    def on_parse(self) -> Iterator[None]:
        yield
        document = self.execution_context.graphql_document
        if document is None or self.execution_context._provided_operation_name is not None:
            return  # `operation_name` would answer the first operation's name; only this tells "none sent"
        operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
        if len(operations) > 1:
            raise OperationNameRequired


# Parsing and validating the same document on every request costs more than executing a page of
# it. Clients send few distinct documents; the caches are bounded LRUs shared by the process.
DOCUMENT_CACHE_SIZE = 512


def build_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Factories, so every operation gets fresh extension instances."""
    # The limiters' validation rules are classes, built once here: a limiter built per operation
    # makes new rule classes each time, and the validation cache (keyed by the rules) never hits.
    limit_rules: list[type[ASTValidationRule]] = [
        AcceptedStringLiterals,  # not a limit: the edge's definition of text, over every string literal
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        depth_limit_counting_introspection(settings.graphql_max_depth),
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
    ]
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
        OneOperationOrItsName,
        lambda: AddValidationRules(limit_rules),
        lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
        ValidationErrorCodes,
        UnitOfWork,
        MaskUnexpectedErrors,
    ]
    if settings.env is Environment.production:
        extensions.append(DisableIntrospection)
    return extensions
