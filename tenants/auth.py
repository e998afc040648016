"""The auth subject: the tenant a request acts for, who acts, and what they may do."""

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    read = "read"
    write = "write"


class SubjectKind(StrEnum):
    api_key = "api_key"
    member = "member"


class Role(StrEnum):
    """A member's role in a tenant; each grants a set of scopes."""

    owner = "owner"
    admin = "admin"
    analyst = "analyst"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.owner: frozenset({Scope.read, Scope.write}),
    Role.admin: frozenset({Scope.read, Scope.write}),
    Role.analyst: frozenset({Scope.read}),
}


@dataclass(frozen=True, slots=True)
class AuthSubject:
    tenant_id: uuid.UUID
    kind: SubjectKind
    subject_id: uuid.UUID
    scopes: frozenset[Scope]

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes

    @property
    def log_label(self) -> str:
        return f"{self.kind}:{self.subject_id}"
