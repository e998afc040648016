"""Permission classes: a field states the scope it needs; the subject's key or role grants it."""

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from churnsaver.graphql.errors import FORBIDDEN, UNAUTHENTICATED
from churnsaver.tenants.auth import Scope


class _HasScope(BasePermission):
    scope: Scope

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        subject = info.context.subject
        if subject is None:
            self.message = "authentication required"
            self.error_extensions = {"code": UNAUTHENTICATED}
            return False
        self.message = f"this requires the '{self.scope}' scope"
        self.error_extensions = {"code": FORBIDDEN}
        return subject.can(self.scope)


class CanRead(_HasScope):
    scope = Scope.read


class CanWrite(_HasScope):
    scope = Scope.write
