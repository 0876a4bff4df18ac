"""pytest plugin for the runs against other Blender versions (``-p tests.blender_exit``, see the Makefile):
end the process right after pytest's summary, skipping C++ static destructors. bpy 4.5's module build can
deadlock in a destructor at exit (``delayed_close_thread_run``, a thread waiting on a condition variable
being destroyed), which would hang ``make test`` after every test has passed."""

from __future__ import annotations

import os
import sys

_status = {"code": 0}


def pytest_sessionfinish(session, exitstatus) -> None:
    _status["code"] = int(exitstatus)


def pytest_unconfigure(config) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_status["code"])
