"""API keys by id."""

from churnsaver.graphql.dataloaders.by_id import RowsById
from churnsaver.tenants.models import ApiKey
from churnsaver.tenants.repository import ApiKeyRepository


class ApiKeyLoader(RowsById[ApiKey]):
    repository = ApiKeyRepository
