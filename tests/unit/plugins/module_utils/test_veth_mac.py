# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The veth model's mac and peer_mac options (pure parts: validation, normalisation, the desired state)."""

from __future__ import annotations

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._link import VETH_KEYS, VethResource
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.plugin_utils._stage import container_mac


def test_macs_are_normalised_and_only_in_the_state_when_asked_for() -> None:
    res = VethResource({"name": "veth10", "peer": "veth11", "peer_netns": "con1", "peer_mac": "0A-58-AC-10-00-02"})
    assert res.peer_mac == "0a:58:ac:10:00:02" and res.mac is None
    want = res.want(None)
    assert want["peer_mac"] == "0a:58:ac:10:00:02" and "mac" not in want
    plain = VethResource({"name": "veth10", "peer": "veth11", "peer_netns": "con1"})
    assert tuple(plain.want(None)) == VETH_KEYS


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0a:58:ac:10:00", "is not a MAC address"),
        ("zz:58:ac:10:00:02", "is not a MAC address"),
        ("01:00:5e:00:00:01", "is a multicast or zero"),
        ("00:00:00:00:00:00", "is a multicast or zero"),
    ],
)
def test_bad_macs_are_refused(value: str, message: str) -> None:
    with pytest.raises(NetlabError, match=f"veth veth10: mac '{value}' {message}"):
        VethResource({"name": "veth10", "peer": "veth11", "mac": value})


def test_the_planner_derives_the_macs_from_the_address() -> None:
    assert container_mac("172.16.0.2") == "0a:58:ac:10:00:02"
    assert container_mac("172.16.0.2", node_end=True) == "0a:59:ac:10:00:02"
