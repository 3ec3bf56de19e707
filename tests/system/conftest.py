# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the system tests: labs of their own for a test or a test module, removed even on failure.

    def test_something(lab_factory):
        lab = lab_factory(nodes=2)      # unique lab name, inventory in the test's tmp_path
        run = lab.up()                  # ansible-playbook -i <its inventory> playbooks/lab.yml
        assert run.rc == 0, run.output

The helpers (Lab, Run, live_netns_cookies, ...) are in labtools.py: ``from labtools import Lab``.

The tier runs with pytest-xdist ``--dist loadgroup``: the tests of a file stay in one worker (they may share a
module-scoped lab), unless the file sets ``SPREAD_TESTS = True`` (its long tests then share both workers).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labtools import Lab, unique_lab_name, write_inventory


def _factory(tmp: Path, hint: str) -> Iterator[Callable[..., Lab]]:
    made: list[Lab] = []

    def make(nodes: int | list[str] = 2, **options: Any) -> Lab:
        name = unique_lab_name(hint)
        inventory = write_inventory(tmp / name, name, nodes, **options)
        names = [f"node{i}" for i in range(1, nodes + 1)] if isinstance(nodes, int) else list(nodes)
        lab = Lab(name=name, inventory=inventory, nodes=names)
        made.append(lab)
        return lab

    try:
        yield make
    finally:
        errors = []
        for lab in reversed(made):
            try:
                lab.destroy()
            except Exception as exc:  # keep removing the others
                errors.append(f"{lab.name}: {exc}")
        assert not errors, errors


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and not getattr(module, "SPREAD_TESTS", False):
            item.add_marker(pytest.mark.xdist_group(module.__name__))


@pytest.fixture
def lab_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Lab]]:
    """Make labs (``lab_factory(nodes=2, underlay=...)``) that are removed after the test."""
    yield from _factory(tmp_path, request.node.name)


@pytest.fixture(scope="module")
def lab_module_factory(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Like lab_factory, for labs shared by the tests of one module."""
    yield from _factory(tmp_path_factory.mktemp("labs"), request.module.__name__.rsplit(".", 1)[-1])
