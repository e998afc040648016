"""The auth subject: the tenant a request acts for, who acts, and what they may do.

Services take the subject and check its scopes themselves (`require_read()`, `require_write()`),
so a rule holds whoever calls: a resolver, the CLI or a job. The CLI and jobs act as the
system subject of a tenant (`AuthSubject.system`), which holds every scope.
"""

import uuid
from dataclasses import dataclass
from enum import StrEnum

from churnsaver.backend.core.errors import PermissionDenied


class Scope(StrEnum):
    read = "read"
    write = "write"


class SubjectKind(StrEnum):
    api_key = "api_key"
    member = "member"
    system = "system"


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
ALL_SCOPES = frozenset(Scope)
SYSTEM_SUBJECT_ID = uuid.UUID(int=0)  # the system is no key or member: it has no row of its own


@dataclass(frozen=True, slots=True)
class AuthSubject:
    tenant_id: uuid.UUID
    kind: SubjectKind
    subject_id: uuid.UUID
    scopes: frozenset[Scope]

    @classmethod
    def system(cls, tenant_id: uuid.UUID) -> "AuthSubject":
        """The tenant acted on by the CLI or a job: every scope, logged as the system."""
        return cls(tenant_id=tenant_id, kind=SubjectKind.system, subject_id=SYSTEM_SUBJECT_ID, scopes=ALL_SCOPES)

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes

    def require(self, scope: Scope) -> None:
        """PermissionDenied unless the subject holds `scope`."""
        if scope not in self.scopes:
            raise PermissionDenied(f"this requires the '{scope}' scope")

    def require_read(self) -> None:
        self.require(Scope.read)

    def require_write(self) -> None:
        self.require(Scope.write)

    @property
    def log_label(self) -> str:
        return "system" if self.kind is SubjectKind.system else f"{self.kind}:{self.subject_id}"
