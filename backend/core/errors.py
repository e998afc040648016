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


def checked_name(name: str | None, *, what: str, maximum: int) -> str:
    """`name` without surrounding spaces, or InvalidInput naming `what` ("an offer name") when that
    leaves it empty or longer than `maximum`."""
    name = (name or "").strip()
    if not name or len(name) > maximum:
        raise InvalidInput(f"{what} is 1 to {maximum} characters")
    return name


class Conflict(DomainError):
    code = "CONFLICT"
