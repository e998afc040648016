"""The GIL's switch interval while the app runs: short on SQLite, whose writer thread shares the
process with the event loop (sqlite_writer.py), and as it was once the app has stopped."""

import sys

from churnsaver.backend.app import create_app
from churnsaver.backend.core.sqlite_writer import SWITCH_INTERVAL_SECONDS

DEFAULT_INTERVAL = 0.005


async def test_the_app_sets_the_switch_interval_for_its_database_while_it_runs(settings):
    before = sys.getswitchinterval()
    sys.setswitchinterval(DEFAULT_INTERVAL)
    try:
        app = create_app(settings, run_jobs=False)
        async with app.router.lifespan_context(app):
            running = sys.getswitchinterval()
        stopped = sys.getswitchinterval()
    finally:
        sys.setswitchinterval(before)

    assert running == (SWITCH_INTERVAL_SECONDS if settings.is_sqlite else DEFAULT_INTERVAL)
    assert stopped == DEFAULT_INTERVAL
