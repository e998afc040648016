"""Cases by id."""

from churnsaver.backend.cases.models import RecoveryCase
from churnsaver.backend.cases.repository import CaseRepository
from churnsaver.graphql.dataloaders.by_id import RowsById


class CaseLoader(RowsById[RecoveryCase]):
    repository = CaseRepository
