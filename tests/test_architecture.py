"""Dependencies point one way (README, Architecture): this test reads every module's imports,
function-level ones included, and fails on an import against the layering.

- `backend/core/` imports nothing of ours but itself.
- `tenants/` and `jobs/` stand on core only.
- The domains of `backend/` are ordered bottom to top; a domain imports core, tenants, jobs and
  the domains below it, never one above it, so no two domains import each other.
- No domain, nothing in `tenants/` or `jobs/`, imports `graphql/` or `widgets/`.
- The composition root (`backend/app.py`, `backend/cli/`, and the whole-schema modules beside
  it) may import everything; `graphql/` and `widgets/` everything but the composition root.
"""

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CODE_FOLDERS = ("backend", "graphql", "jobs", "tenants", "widgets")

# Bottom to top.
DOMAINS = (
    "customers",
    "embeds",
    "integrations",
    "risk",
    "cases",
    "offers",
    "channels",
    "campaigns",
    "billing",
    "ingest",
    "synthetic",
)
FOUNDATION = {"core", "tenants", "jobs"}
COMPOSITION_ROOT = {"app", "cli", "demo", "models", "migrate"}


def unit_of(module: str) -> str | None:
    """The layering unit of a `churnsaver.…` module: `core`, a domain, `tenants`, `jobs`,
    `graphql`, `widgets`, `root` (the composition root) or `backend` (the namespace itself)."""
    parts = module.split(".")
    if parts[0] != "churnsaver" or len(parts) < 2:
        return None
    if parts[1] != "backend":
        return "migrations" if parts[1] == "migrations" else parts[1]
    if len(parts) == 2:
        return "backend"
    if parts[2] in COMPOSITION_ROOT:
        return "root"
    return parts[2]


def allowed_for(unit: str) -> set[str]:
    if unit == "backend":
        return set()
    if unit == "core":
        return {"core"}
    if unit in ("tenants", "jobs"):
        return {"core", unit}
    if unit in DOMAINS:
        return FOUNDATION | set(DOMAINS[: DOMAINS.index(unit) + 1])
    if unit in ("graphql", "widgets"):
        return FOUNDATION | set(DOMAINS) | {unit}
    if unit == "root":
        return FOUNDATION | set(DOMAINS) | {"root", "graphql", "widgets", "migrations", "backend"}
    raise AssertionError(f"{unit!r} has no place in the layering: add it to DOMAINS (in order) or a layer")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    imports = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imports.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            imports.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, name) for line, name in imports if name.startswith("churnsaver")]


def module_files() -> list[tuple[str, Path]]:
    files = []
    for folder in CODE_FOLDERS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            module = "churnsaver." + ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
            files.append((module.removesuffix(".__init__"), path))
    return files


def violations(module: str, path: Path) -> list[str]:
    unit = unit_of(module)
    assert unit is not None
    allowed = allowed_for(unit)
    return [
        f"{path.name}:{line}: {unit} imports {imported} ({unit_of(imported)})"
        for line, imported in imported_modules(path)
        if unit_of(imported) not in allowed
    ]


def test_every_domain_folder_has_a_place_in_the_layering() -> None:
    packages = {path.name for path in (REPO_ROOT / "backend").iterdir() if (path / "__init__.py").is_file()}
    assert packages - COMPOSITION_ROOT - {"core"} == set(DOMAINS)


@pytest.mark.parametrize(("module", "path"), [pytest.param(*pair, id=pair[0]) for pair in module_files()])
def test_imports_follow_the_layering(module: str, path: Path) -> None:
    assert violations(module, path) == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("churnsaver.backend.core.db", "churnsaver.backend.customers.models"),
        ("churnsaver.backend.customers.apply", "churnsaver.backend.risk.scoring"),
        ("churnsaver.backend.risk.features", "churnsaver.backend.ingest.inbox"),
        ("churnsaver.backend.ingest.tasks", "churnsaver.graphql.schema"),
        ("churnsaver.tenants.auth", "churnsaver.backend.customers.models"),
        ("churnsaver.jobs.relay", "churnsaver.widgets"),
        ("churnsaver.graphql.schema", "churnsaver.backend.app"),
    ],
)
def test_an_import_against_the_layering_is_caught(importer: str, imported: str, tmp_path: Path) -> None:
    path = tmp_path / "module.py"
    path.write_text(f"def later() -> None:\n    from {imported} import something\n")
    assert violations(importer, path) == [f"module.py:2: {unit_of(importer)} imports {imported} ({unit_of(imported)})"]


def test_tenant_filters_are_written_only_by_the_scoping_helper() -> None:
    """`Model.tenant_id == …` appears only in core/repository.py (`owned_by`, which every
    repository builds on) and in core/bulk.py, whose statements are built once per table and bind
    the tenant per batch: the one named exemption."""
    allowed = {REPO_ROOT / "backend" / "core" / "repository.py", REPO_ROOT / "backend" / "core" / "bulk.py"}
    writers = {path for _, path in module_files() if "tenant_id ==" in path.read_text()}
    assert writers - allowed == set()
