# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""converge()'s rollback: what is undone, in which order, and what the message says (kernel: tests/property)."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import Resource, State, converge


class Box(Resource):
    """A value in a dict standing for the kernel; ``refuse`` makes apply fail after writing half of it."""

    kind = "box"

    def __init__(self, world: dict[str, Any], name: str, value: Any, refuse: bool = False) -> None:
        super().__init__({"name": name, "state": "absent" if value is None else "present"})
        self.world, self.name, self.value, self.refuse = world, name, value, refuse

    def check(self, session: Any) -> None:
        pass

    def read(self, session: Any) -> State:
        return None if self.name not in self.world else {"value": self.world[self.name]}

    def want(self, current: State) -> State:
        return None if self.value is None else {"value": self.value}

    def apply(self, session: Any, current: State, desired: State) -> None:
        if desired is None:
            self.world.pop(self.name, None)
            return
        self.world[self.name] = desired["value"]
        self.world.setdefault("log", []).append(self.name)
        if self.refuse:
            raise NetlabError(f"{self.key}: the kernel refused the change (EINVAL)")


def test_a_refusal_midway_puts_back_every_change_last_first() -> None:
    world: dict[str, Any] = {"a": 1, "gone": 5}
    resources = [Box(world, "gone", None), Box(world, "a", 2), Box(world, "b", 3), Box(world, "c", 4, refuse=True)]
    with pytest.raises(NetlabError) as err:
        converge(object(), resources, check_mode=False, rollback=True)
    assert str(err.value) == (
        "box c: the kernel refused the change (EINVAL); rolled back: box c, box b, box a; removals not undone: box gone"
    )
    assert {k: v for k, v in world.items() if k != "log"} == {"a": 1}


def test_without_rollback_the_changes_stay() -> None:
    world: dict[str, Any] = {}
    with pytest.raises(NetlabError, match=r"^box c: the kernel refused the change \(EINVAL\)$"):
        converge(object(), [Box(world, "b", 3), Box(world, "c", 4, refuse=True)], check_mode=False)
    assert world["b"] == 3 and world["c"] == 4
