"""Typed domain errors. Their messages are written for the client; every other error is masked."""


class DomainError(Exception):
    """An expected failure whose message is safe to show to the caller."""

    code = "BAD_REQUEST"


class NotFound(DomainError):
    """The thing does not exist, or belongs to another tenant: callers cannot tell the two apart."""

    code = "NOT_FOUND"

    def __init__(self, what: str = "object") -> None:
        super().__init__(f"{what} not found")


class PermissionDenied(DomainError):
    code = "FORBIDDEN"


class InvalidInput(DomainError):
    code = "BAD_USER_INPUT"


class Conflict(DomainError):
    code = "CONFLICT"
