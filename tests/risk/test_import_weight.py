"""The CLI and the job modules start without the modelling libraries (seconds to import): only a
process that scores or trains imports them."""

import subprocess
import sys

HEAVY = ("pandas", "scipy", "catboost")
CHECK = f"""
import sys
import churnsaver.backend.cli.main
from churnsaver.jobs.registry import load_jobs
load_jobs()
print(sorted(name for name in {HEAVY!r} if name in sys.modules))
"""


def test_the_cli_and_every_job_module_import_without_pandas_scipy_or_catboost():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"


def test_scoring_itself_still_imports_them():
    check = "import sys, churnsaver.backend.risk.scoring; print('catboost' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "True"
