"""Fixtures of the Postfix tests: instances stopped whatever happens, their logs shown on failure."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.postfix.harness import PostfixInstance, require_postfix

_REPORTS: pytest.StashKey[dict[str, pytest.TestReport]] = pytest.StashKey()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so a fixture's teardown knows whether the test failed."""
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture
def postfix_instances(request: pytest.FixtureRequest) -> Iterator[list[PostfixInstance]]:
    """A list the test appends its (started or not) instances to; each is stopped and removed at the end.

    When the test failed, every instance's log is printed (pytest shows it under "Captured stdout
    teardown"); the directory of a failed test's instance is kept for a post-mortem.
    """
    require_postfix()
    instances: list[PostfixInstance] = []
    yield instances
    reports = request.node.stash.get(_REPORTS, {})
    failed = any(report.failed for report in reports.values())
    for instance in instances:
        instance.stop()
        if failed:
            print(f"\n===== postfix {instance.name} ({instance.root}) log =====\n{instance.log_text()}")
        else:
            instance.remove()
