"""The vendored widget script: built from the sources now in widgets/js/src (a test fails when
someone edits them and forgets `make widget`), byte for byte what esbuild builds from them, small
(at most 15 KB gzipped) and with no address of any other host in it."""

import gzip
import hashlib
import re
import shutil
import subprocess

from tests.fixtures.databases import skip_or_fail

MAX_GZIPPED = 15 * 1024
BANNER = re.compile(r"^/\* Churn Saver widget v1 · built by esbuild (\S+) · sources sha256 ([0-9a-f]{64}) \*/\n")


def sources_digest(repo_root) -> str:
    """The digest build.mjs puts in the banner: each source's name and bytes, in name order."""
    digest = hashlib.sha256()
    for path in sorted((repo_root / "widgets" / "js" / "src").iterdir()):
        digest.update(f"{path.name}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_the_vendored_script_was_built_from_the_current_sources(repo_root) -> None:
    built = (repo_root / "widgets" / "static" / "churnsaver.js").read_text()
    banner = BANNER.match(built)
    assert banner is not None, "widgets/static/churnsaver.js was not built by widgets/js/build.mjs"
    assert banner.group(2) == sources_digest(repo_root), "widgets/js/src changed: run `make widget` and commit"


def test_esbuild_rebuilds_exactly_the_vendored_script(repo_root, tmp_path) -> None:
    tools = repo_root / "widgets" / "js"
    if not (tools / "node_modules" / "esbuild").is_dir() or shutil.which("node") is None:
        skip_or_fail("the widget's esbuild is not installed (`make widget-tools` installs it with npm)")
    copy = tmp_path / "widgets"
    shutil.copytree(tools, copy / "js", symlinks=True, ignore=shutil.ignore_patterns("node_modules"))
    (copy / "js" / "node_modules").symlink_to(tools / "node_modules")
    (copy / "static").mkdir()
    subprocess.run(["node", str(copy / "js" / "build.mjs")], check=True, capture_output=True, timeout=60)
    rebuilt = (copy / "static" / "churnsaver.js").read_bytes()
    assert rebuilt == (repo_root / "widgets" / "static" / "churnsaver.js").read_bytes()


def test_the_script_is_at_most_15_kb_gzipped(repo_root) -> None:
    built = (repo_root / "widgets" / "static" / "churnsaver.js").read_bytes()
    assert len(gzip.compress(built, compresslevel=9)) <= MAX_GZIPPED


def test_the_script_names_no_other_host(repo_root) -> None:
    """It talks to the origin it was loaded from and nothing else: no fonts, analytics or CDNs."""
    built = (repo_root / "widgets" / "static" / "churnsaver.js").read_text()
    assert re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", built) == []
