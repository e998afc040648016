"""Print the schema's SDL: `make schema` writes it to graphql/schema.graphql, the checked-in contract."""

from churnsaver.backend.core.config import Settings
from churnsaver.graphql.schema import create_schema


def current_sdl() -> str:
    return create_schema(Settings(env="test")).as_str() + "\n"


if __name__ == "__main__":
    print(current_sdl(), end="")
