"""What clients see of an error, its machine-readable code (`extensions.code`), and how it is logged.

Domain errors, GraphQL's own and the edge's refusals of an input (`UnacceptableInput`, coded
BAD_USER_INPUT wherever they arise) reach the client with their message; everything else is masked
and logged with its traceback at error level. Client mistakes are logged at info: nothing on our
side needs fixing.
"""

import re
from collections.abc import Iterator

import structlog
from graphql.error import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors, SchemaExtension

from churnsaver.backend.core.accepted_json import UnacceptableInput
from churnsaver.backend.core.errors import DomainError, PermissionDenied

logger = structlog.get_logger(__name__)

MASKED_MESSAGE = "Internal server error."

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class Unauthenticated(PermissionDenied):
    code = UNAUTHENTICATED


def is_client_visible(error: GraphQLError) -> bool:
    original = error.original_error
    # No original error: a syntax or validation error. A GraphQLError raised on purpose (a
    # permission class refusing) is written for the client too.
    return original is None or isinstance(original, DomainError | GraphQLError | UnacceptableInput)


def should_mask(error: GraphQLError) -> bool:
    return not is_client_visible(error)


def error_code(error: GraphQLError) -> str:
    if not is_client_visible(error):
        return INTERNAL_SERVER_ERROR
    if isinstance(error.original_error, DomainError):
        return error.original_error.code
    if isinstance(error.original_error, UnacceptableInput):
        return BAD_USER_INPUT
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code  # set by a permission class, or by ValidationErrorCodes
    if isinstance(error, GraphQLSyntaxError):
        return PARSE_FAILED
    # Left: errors graphql-core raises while executing, such as a variable of the wrong type.
    return BAD_USER_INPUT


SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def hide_suggestions(error: GraphQLError) -> None:
    """Drop the "Did you mean 'email'?" of a message: it reads the schema out to a caller who guesses."""
    error.message = SUGGESTION.sub("", error.message)


def is_request_error(data: object, errors: list[GraphQLError] | None) -> bool:
    """Whether the operation never ran: the document did not parse or validate, or its variables
    did not coerce. Such errors have no path; an error while running has one, or is masked."""
    return (
        data is None
        and bool(errors)
        and all(error.path is None and error_code(error) != INTERNAL_SERVER_ERROR for error in errors or ())
    )


def report_errors(errors: list[GraphQLError]) -> None:
    """Give each client-visible error its code, and log every error at the level it deserves."""
    for error in errors:
        code = error_code(error)
        if code == INTERNAL_SERVER_ERROR:
            logger.error("graphql.unexpected_error", path=error.path, exc_info=error.original_error)
        else:
            error.extensions = {**(error.extensions or {}), "code": code}
            logger.info("graphql.client_error", code=code, path=error.path)


class ValidationErrorCodes(SchemaExtension):
    """Codes validation errors, which nothing else tells from other errors without a cause; a
    literal the edge refuses (graphql/accepted_input.py) is bad input, as it is in a variable."""

    def on_validate(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or []:
            code = BAD_USER_INPUT if isinstance(error.original_error, UnacceptableInput) else VALIDATION_FAILED
            error.extensions = {**(error.extensions or {}), "code": code}


class MaskUnexpectedErrors(MaskErrors):
    """Replaces every error a client may not see by a plain message and INTERNAL_SERVER_ERROR."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask, error_message=MASKED_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_SERVER_ERROR}
        return masked
