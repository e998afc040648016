"""What clients may see of an error: domain errors and GraphQL's own; everything else is masked."""

from graphql.error import GraphQLError

from churnsaver.backend.errors import DomainError

MASKED_MESSAGE = "Internal server error."


def is_client_visible(error: GraphQLError) -> bool:
    original = error.original_error
    # No original error: a syntax, validation or permission error raised by GraphQL itself.
    return original is None or isinstance(original, DomainError)


def should_mask(error: GraphQLError) -> bool:
    return not is_client_visible(error)
