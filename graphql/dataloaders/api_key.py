"""API keys by id."""

from churnsaver.graphql.dataloaders.by_id import RowsById
from churnsaver.tenants.api_keys import ApiKeyRepository
from churnsaver.tenants.models import ApiKey


class ApiKeyLoader(RowsById[ApiKey]):
    repository = ApiKeyRepository
