"""Every GraphQL error carries a machine-readable `extensions.code`; client mistakes are logged at
info, and only unexpected errors at error level."""

import base64
import logging
import uuid

import pytest
import strawberry
import structlog
from structlog.testing import capture_logs

from churnsaver.backend.core.db import Database
from churnsaver.graphql import errors
from churnsaver.graphql.context import Context
from churnsaver.graphql.errors import MaskUnexpectedErrors
from churnsaver.graphql.schema import Schema, create_schema
from tests.fixtures.factories import create_api_key_for
from tests.fixtures.graphql import graphql

CREATE_KEY = "mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { __typename } }"
CUSTOMERS = "query($first: Int) { customers(first: $first) { totalCount } }"


@pytest.fixture
def logs(monkeypatch):
    """What graphql/errors.py logs during the test.

    Every create_app reconfigures structlog, and a logger cached under an earlier configuration
    logs past the capture: the module's logger is looked up afresh inside it.
    """
    with capture_logs() as entries:
        monkeypatch.setattr(errors, "logger", structlog.get_logger(errors.__name__))
        yield entries


def levels(logs: list[dict], event: str) -> list[str]:
    return [entry["log_level"] for entry in logs if entry["event"] == event]


async def coded(client, tenant, query: str, variables: dict | None = None, headers: dict | None = None) -> list[str]:
    body = await graphql(client, query, variables, headers=headers or tenant.headers)
    return [error["extensions"]["code"] for error in body["errors"]]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ viewer { ", "GRAPHQL_PARSE_FAILED"),
        ("{ viewer { noSuchField } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ node { id } }", "GRAPHQL_VALIDATION_FAILED"),
    ],
    ids=["syntax", "unknown-field", "missing-argument"],
)
async def test_malformed_documents_are_coded_and_logged_at_info(client, tenant, logs, caplog, query, code):
    codes = await coded(client, tenant, query)

    assert codes == [code]
    assert levels(logs, "graphql.client_error") == ["info"]
    assert levels(logs, "graphql.unexpected_error") == []
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_limits_are_validation_or_parse_failures(client, tenant):
    aliases = "{ " + " ".join(f"a{n}: viewer {{ kind }}" for n in range(31)) + " }"
    tokens = "{ viewer { " + " ".join(["kind"] * 6000) + " } }"

    assert await coded(client, tenant, aliases) == ["GRAPHQL_VALIDATION_FAILED"]
    assert await coded(client, tenant, tokens) == ["GRAPHQL_PARSE_FAILED"]


async def test_bad_input_is_coded_and_logged_at_info(client, tenant, logs):
    out_of_range = await coded(client, tenant, CUSTOMERS, {"first": -1})
    wrong_type = await coded(client, tenant, CUSTOMERS, {"first": "many"})

    assert out_of_range == wrong_type == ["BAD_USER_INPUT"]
    assert levels(logs, "graphql.client_error") == ["info", "info"]
    assert levels(logs, "graphql.unexpected_error") == []


async def test_an_unknown_id_is_not_found_and_logged_at_info(client, tenant, logs, caplog):
    made_up = base64.b64encode(f"Customer:{uuid.uuid4()}".encode()).decode()

    codes = await coded(client, tenant, "query($id: ID!) { node(id: $id) { id } }", {"id": made_up})

    assert codes == ["NOT_FOUND"]
    assert levels(logs, "graphql.client_error") == ["info"]
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


async def test_a_missing_scope_is_forbidden(client, db, tenant, logs):
    read_only = await create_api_key_for(db, tenant.id, scopes=["read"])

    codes = await coded(
        client, tenant, CREATE_KEY, {"input": {"name": "x"}}, headers={"Authorization": f"Bearer {read_only}"}
    )

    assert codes == ["FORBIDDEN"]
    assert levels(logs, "graphql.client_error") == ["info"]


async def test_no_subject_is_unauthenticated(settings):
    context = Context(db=Database(settings), settings=settings, subject=None)
    try:
        result = await create_schema(settings).execute("{ viewer { kind } }", context_value=context)
    finally:
        await context.db.dispose()

    assert [error.extensions for error in result.errors] == [{"code": "UNAUTHENTICATED"}]
    assert result.errors[0].message == "authentication required"


async def test_unexpected_errors_are_coded_internal_and_logged_at_error(logs):
    @strawberry.type
    class Query:
        @strawberry.field
        def broken(self) -> str | None:
            raise RuntimeError("the database went away")

        @strawberry.field
        def fine(self) -> str:
            return "ok"

    schema = Schema(query=Query, extensions=[MaskUnexpectedErrors])
    result = await schema.execute("{ broken fine }")

    assert result.data == {"broken": None, "fine": "ok"}
    assert [(error.message, error.extensions) for error in result.errors] == [
        ("Internal server error.", {"code": "INTERNAL_SERVER_ERROR"})
    ]
    [logged] = [entry for entry in logs if entry["event"] == "graphql.unexpected_error"]
    assert logged["log_level"] == "error"
    assert isinstance(logged["exc_info"], RuntimeError)
    assert levels(logs, "graphql.client_error") == []
