"""Processes and waiting, for every test: where the project's console scripts are,
and the one way a test waits — on a condition, never on the clock's say-so."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent  # the virtualenv's bin/: catalog, migration, compat


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "the condition") -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that.

    ``timeout`` only bounds a hang (a broken build must not wait forever); it is
    never what a test asserts, so it is generous: a loaded machine is slow, not wrong.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)
