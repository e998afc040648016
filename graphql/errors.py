"""What clients may see of an error: domain errors and GraphQL's own; everything else is masked."""

from graphql.error import GraphQLError

from churnsaver.backend.core.errors import DomainError

MASKED_MESSAGE = "Internal server error."


def is_client_visible(error: GraphQLError) -> bool:
    original = error.original_error
    # No original error: a syntax or validation error. A GraphQLError raised on purpose (a
    # permission class refusing) is written for the client too.
    return original is None or isinstance(original, DomainError | GraphQLError)


def should_mask(error: GraphQLError) -> bool:
    return not is_client_visible(error)
