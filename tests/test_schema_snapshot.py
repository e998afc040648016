"""graphql/schema.graphql is the checked-in contract: a schema change must update it (`make schema`)."""

from churnsaver.graphql.sdl import current_sdl


def test_checked_in_sdl_matches_the_schema(repo_root):
    checked_in = (repo_root / "graphql" / "schema.graphql").read_text()

    assert checked_in == current_sdl(), "the GraphQL schema changed: run `make schema` and review the diff"


def test_contract_names_are_present():
    sdl = current_sdl()

    for fragment in (
        "viewer: Viewer!",
        "node(id: ID!): Node\n",
        "customers(first: Int = 20, after: String = null, filter: CustomerFilter = null, "
        "orderBy: CustomerOrder! = CREATED_ASC): CustomerConnection!",
        "riskHistory(first: Int = 20, after: String = null): RiskScoreConnection!",
        "riskDistribution: RiskDistribution!",
        "setRiskThresholds(input: RiskThresholdsInput!): SetRiskThresholdsResult!",
        "customer(id: ID = null, externalId: String = null): Customer",
        "events(first: Int = 20, after: String = null): CustomerEventConnection!",
        "ingestStats(from: Date = null, to: Date = null): [IngestDailyStat!]!",
        "totalCount: Int!",
        "createApiKey(input: CreateApiKeyInput!): CreateApiKeyResult!",
        "revokeApiKey(id: ID!): RevokeApiKeyResult!",
    ):
        assert fragment in sdl
