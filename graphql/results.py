"""Typed failures returned by mutations, so expected errors are part of the schema."""

import strawberry

from churnsaver.backend.core.errors import DomainError


@strawberry.type
class UserError:
    code: str
    message: str

    @classmethod
    def from_error(cls, error: DomainError) -> "UserError":
        return cls(code=error.code, message=str(error))
