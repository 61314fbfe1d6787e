"""Small helpers shared by the tests that wait on background processes."""
from __future__ import annotations

import time


def wait_for(condition, what: str, timeout: float = 60.0):
    """Poll ``condition`` until it returns something truthy and return that.

    Not a timing assertion: the limit is generous and only stops a test that
    would otherwise hang.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}.")
