# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The netns resource model: name validation, desired state, planning (no kernel access)."""

from __future__ import annotations

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError, netns_path, validate_netns
from ansible_collections.cnfs.netlab.plugins.module_utils._netns import NetnsResource
from ansible_collections.cnfs.netlab.plugins.module_utils._plan import Plan


class FakeSession:
    def __init__(self) -> None:
        self.plan = Plan()


@pytest.mark.parametrize("name", ["con1", "con-1.a_b", "x" * 255, "ünïcode"])
def test_legal_names(name: str) -> None:
    res = NetnsResource({"name": name, "state": "present"})
    assert res.key == f"netns {name}"
    assert res.netns is None  # a namespace does not live in a namespace


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a/b", "is not a legal namespace name"),
        ("with space", "is not a legal namespace name"),
        ("tab\there", "is not a legal namespace name"),
        ("", "is not a legal namespace name"),
        (".", "is not a legal namespace name"),
        ("..", "is not a legal namespace name"),
        ("x" * 256, "is not a legal namespace name"),
        ("/run/netns/con1", "give a name"),
    ],
)
def test_illegal_names(name: str, message: str) -> None:
    with pytest.raises(NetlabError, match=message):
        NetnsResource({"name": name, "state": "present"})


def test_want_present_and_absent() -> None:
    present = NetnsResource({"name": "con1", "state": "present"})
    assert present.want(None) == {"name": "con1", "loopback": "up"}
    assert present.want({"name": "con1", "loopback": "down"}) == {"name": "con1", "loopback": "up"}
    absent = NetnsResource({"name": "con1", "state": "absent"})
    assert absent.want({"name": "con1", "loopback": "up"}) is None
    assert absent.want(None) is None


def test_check_plans_the_namespace() -> None:
    session = FakeSession()
    NetnsResource({"name": "con1", "state": "present"}).check(session)  # type: ignore[arg-type]
    NetnsResource({"name": "con2", "state": "absent"}).check(session)  # type: ignore[arg-type]
    assert (session.plan.namespace("con1"), session.plan.namespace("/run/netns/con2")) == (True, False)
    assert session.plan.namespace("con3") is None


def test_result_shape() -> None:
    res = NetnsResource({"name": "con1", "state": "present"})
    assert res.result({"name": "con1", "loopback": "up"}) == {"netns": {"name": "con1", "loopback": "up"}}
    assert res.result(None) == {"netns": {}}


def test_netns_paths() -> None:
    assert netns_path("con1") == "/run/netns/con1"
    assert netns_path("/proc/1/ns/net") == "/proc/1/ns/net"
    validate_netns("/proc/1/ns/net")
    validate_netns(None)
    with pytest.raises(NetlabError, match="not a clean absolute path"):
        validate_netns("/run/netns/../netns/con1")
