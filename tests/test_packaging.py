"""Packaging: one `churnsaver` namespace over the top-level folders, and graphql/ never shadows graphql-core."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

CODE_FOLDERS = ["backend", "graphql", "tenants", "jobs", "widgets", "migrations"]


def python_packages(root: Path) -> set[str]:
    """Every folder holding Python modules under the code folders, as `churnsaver.*` names."""
    names = set()
    for folder in CODE_FOLDERS:
        for module in (root / folder).rglob("*.py"):
            relative = module.parent.relative_to(root)
            if "__pycache__" not in relative.parts:
                names.add("churnsaver." + ".".join(relative.parts))
    return names


def test_graphql_folder_is_not_a_regular_package(repo_root):
    assert not (repo_root / "graphql" / "__init__.py").exists()


def test_strawberry_imports_from_the_repo_root(repo_root):
    probe = "import strawberry, graphql; print(graphql.__file__); import churnsaver.graphql.schema"
    result = subprocess.run([sys.executable, "-c", probe], cwd=repo_root, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    assert "site-packages" in result.stdout  # graphql-core, not our folder


def test_pyproject_lists_every_package(repo_root):
    config = tomllib.loads((repo_root / "pyproject.toml").read_text())

    assert set(config["tool"]["setuptools"]["packages"]) == python_packages(repo_root)


def test_built_wheel_holds_every_module(repo_root, tmp_path):
    result = subprocess.run(
        ["uv", "build", "--wheel", "--out-dir", str(tmp_path), str(repo_root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("churnsaver-*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())

    expected = {
        "churnsaver/" + str(module.relative_to(repo_root))
        for folder in CODE_FOLDERS
        for module in (repo_root / folder).rglob("*.py")
        if "__pycache__" not in module.parts
    }
    assert expected <= in_wheel, sorted(expected - in_wheel)
    assert "churnsaver/graphql/schema.graphql" in in_wheel
    console = repo_root / "graphql" / "static" / "graphiql"
    console_assets = {f"churnsaver/graphql/static/graphiql/{asset.name}" for asset in console.iterdir()}
    assert "churnsaver/graphql/static/graphiql/graphiql.min.js" in console_assets
    assert console_assets <= in_wheel, sorted(console_assets - in_wheel)
    assert "churnsaver/migrations/script.py.mako" in in_wheel
    assert "churnsaver/widgets/static/churnsaver.js" in in_wheel
    assert not any(name.startswith("graphql/") for name in in_wheel)
