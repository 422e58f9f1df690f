"""SIGTERM (test.sh's overall timeout) ends the test like Ctrl-C, so the
fixture still stops every process the test started and removes its temp dir."""

import signal


def _interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _interrupt)


import pytest  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ARG001
    """Keeps each phase's report on the item (the fixture prints the logs of a failed test)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
