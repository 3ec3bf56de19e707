# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel tests (root): the regression tests of issue 14 and the property tests. Run with `make test-property`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kernel import Namespaces


@pytest.fixture
def ns() -> Iterator[Namespaces]:
    spaces = Namespaces()
    try:
        yield spaces
    finally:
        spaces.cleanup()


@pytest.fixture
def journal(tmp_path: Path) -> str:
    return str(tmp_path / "sysctl-journal.json")
