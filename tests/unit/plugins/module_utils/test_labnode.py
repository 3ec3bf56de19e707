# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the lab model: names, addresses, sysctls, mountinfo parsing, the resource list."""

from __future__ import annotations

import os

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._args import SYSCTL_JOURNAL
from ansible_collections.cnfs.netlab.plugins.module_utils._labnode import (
    NODE_SYSCTL,
    RESERVED_LAB_NAMES,
    LabPaths,
    LabResource,
    NodeResource,
    build_resources,
    normalise_nodes,
    parse_mountinfo,
    sysctl_path,
    under,
    underlay_cidr,
    validate_lab_name,
    validate_node_name,
    validate_state_dir,
    validate_sysctl,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay import RUN_DIR

MOUNTINFO = (
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "46 22 0:4 net:[4026532384] /run/netns/con1 rw shared:5 - nsfs nsfs rw\n"
    "43 22 254:0 /run/cnfs-netlab/lab /run/cnfs-netlab/lab rw,relatime - ext4 /dev/vda rw\n"
    "80 43 0:4 mnt:[4026533547] /run/cnfs-netlab/lab/node1/mnt rw - nsfs nsfs rw\n"
    "90 22 0:50 / /mnt/with\\040space rw master:3 propagate_from:2 - tmpfs tmp\\040fs rw\n"
)


def test_parse_mountinfo_fields_and_propagation() -> None:
    entries = parse_mountinfo(MOUNTINFO)
    assert [e.mountpoint for e in entries] == [
        "/",
        "/run/netns/con1",
        "/run/cnfs-netlab/lab",
        "/run/cnfs-netlab/lab/node1/mnt",
        "/mnt/with space",
    ]
    root, con1, lab, mnt, spaced = entries
    assert (root.fstype, root.private) == ("ext4", False)
    assert (con1.fstype, con1.root, con1.private) == ("nsfs", "net:[4026532384]", False)
    assert lab.private and mnt.private
    assert mnt.parent_id == lab.mount_id
    assert spaced.source == "tmp fs" and not spaced.private
    assert spaced.propagation == ("master:3", "propagate_from:2")


def test_parse_mountinfo_skips_garbage() -> None:
    assert parse_mountinfo("\nnot a mountinfo line\n") == []


@pytest.mark.parametrize(
    ("path", "top", "inside"),
    [
        ("/run/cnfs-netlab/lab", "/run/cnfs-netlab/lab", True),
        ("/run/cnfs-netlab/lab/node1/net", "/run/cnfs-netlab/lab", True),
        ("/run/cnfs-netlab/lab2", "/run/cnfs-netlab/lab", False),
        ("/run", "/run/cnfs-netlab", False),
    ],
)
def test_under(path: str, top: str, inside: bool) -> None:
    assert under(path, top) is inside


def test_lab_paths() -> None:
    paths = LabPaths("/run/cnfs-netlab", "netlab")
    assert paths.dir == "/run/cnfs-netlab/netlab"
    assert paths.underlay == "/run/cnfs-netlab/netlab/underlay.net"
    assert paths.node_files("node1") == {
        "net": "/run/cnfs-netlab/netlab/node1/net",
        "mnt": "/run/cnfs-netlab/netlab/node1/mnt",
        "uts": "/run/cnfs-netlab/netlab/node1/uts",
    }


@pytest.mark.parametrize("name", ["netlab", "lab-1", "a", "cnfst.x_y", "L" * 64])
def test_lab_name_ok(name: str) -> None:
    assert validate_lab_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "a/b", "with space", "L" * 65, None, 3])
def test_lab_name_bad(name: object) -> None:
    with pytest.raises(NetlabError, match="is not usable"):
        validate_lab_name(name)


@pytest.mark.parametrize("name", sorted(RESERVED_LAB_NAMES))
def test_lab_name_reserved(name: str) -> None:
    with pytest.raises(NetlabError, match=f"lab name '{name}' is reserved"):
        validate_lab_name(name)


def test_reserved_lab_names_are_the_host_side_state() -> None:
    """Every name the modules keep state under in /run/cnfs-netlab is reserved, and nothing else."""
    from ansible_collections.cnfs.netlab.plugins.plugin_utils._stage import RECORD_FILE

    used = {os.path.basename(RUN_DIR), os.path.basename(SYSCTL_JOURNAL), os.path.basename(SYSCTL_JOURNAL) + ".lock"}
    used.add(os.path.basename(RECORD_FILE))
    dirs = {os.path.dirname(RUN_DIR), os.path.dirname(SYSCTL_JOURNAL), os.path.dirname(RECORD_FILE)}
    assert dirs == {"/run/cnfs-netlab"}
    assert used == RESERVED_LAB_NAMES


@pytest.mark.parametrize("name", ["node1", "n", "edge-1.a_b", "x" * 15])
def test_node_name_ok(name: str) -> None:
    assert validate_node_name(name, "lab") == name


@pytest.mark.parametrize("name", ["x" * 16, "", "-n", "a b", "a/b", "a:b", "underlay.net", None, "nöde"])
def test_node_name_bad(name: object) -> None:
    with pytest.raises(NetlabError, match=r"of lab lab: a node name must be 1-15"):
        validate_node_name(name, "lab")


@pytest.mark.parametrize("path", ["relative", "/", "/run/../etc", "/run/x/", "/run/a b", None])
def test_state_dir_bad(path: object) -> None:
    with pytest.raises(NetlabError, match="state_dir"):
        validate_state_dir(path)


def test_state_dir_ok() -> None:
    assert validate_state_dir("/run/cnfs-netlab") == "/run/cnfs-netlab"


@pytest.mark.parametrize(
    ("value", "normal"),
    [("10.0.0.10/24", "10.0.0.10/24"), (" 10.0.0.20/24", "10.0.0.20/24"), ("fd00::a/64", "fd00::a/64")],
)
def test_underlay_cidr_ok(value: str, normal: str) -> None:
    assert underlay_cidr(value, "node x") == normal


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.0.0.10", "is not an address with a prefix length"),
        ("10.0.0.300/24", "is not a valid address"),
        ("10.0.0.0/24", "network address"),
        ("10.0.0.255/24", "broadcast address"),
        (None, "is not an address with a prefix length"),
    ],
)
def test_underlay_cidr_bad(value: object, message: str) -> None:
    with pytest.raises(NetlabError, match=message):
        underlay_cidr(value, "node x")


def test_sysctl_normalised_and_net_only() -> None:
    assert validate_sysctl({"net.ipv4.ip_forward": True, "net/ipv4/conf/all/rp_filter": 2}) == {
        "net.ipv4.ip_forward": "1",
        "net.ipv4.conf.all.rp_filter": "2",
    }
    assert validate_sysctl(None) == {}
    with pytest.raises(NetlabError, match="only network sysctls"):
        validate_sysctl({"kernel.hostname": "x"})
    with pytest.raises(NetlabError, match="must be a dict"):
        validate_sysctl(["net.ipv4.ip_forward"])
    assert sysctl_path("net.ipv4.conf.eth0/100.rp_filter") == "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"


def test_node_defaults_are_a_fresh_vm() -> None:
    assert NODE_SYSCTL == {
        "net.ipv4.ip_forward": "0",
        "net.ipv4.conf.all.rp_filter": "1",
        "net.ipv4.conf.default.rp_filter": "1",
    }


def test_normalise_nodes() -> None:
    nodes = [
        {"name": "node1", "underlay_address": "10.0.0.10/24"},
        {"name": "node2", "underlay_address": "10.0.0.20/24"},
    ]
    assert normalise_nodes(nodes, "lab") == nodes


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([], "non-empty list"),
        ("node1", "non-empty list"),
        (["node1"], "must be a dict"),
        (
            [{"name": "n1", "underlay_address": "10.0.0.10/24"}, {"name": "n1", "underlay_address": "10.0.0.20/24"}],
            "node n1 of lab lab: the name is given twice",
        ),
        (
            [{"name": "n1", "underlay_address": "10.0.0.10/24"}, {"name": "n2", "underlay_address": "10.0.0.10/16"}],
            "node n2 of lab lab: underlay_address 10.0.0.10/16 is already the address of node n1",
        ),
        (
            [{"name": "n1", "underlay_address": "10.0.0.10/24"}, {"name": "n2", "underlay_address": "fd00::2/64"}],
            "mix of IPv4 and IPv6",
        ),
        ([{"name": "n1", "underlay_address": "bad"}], "node n1 of lab lab: underlay_address 'bad'"),
    ],
)
def test_normalise_nodes_bad(nodes: object, message: str) -> None:
    with pytest.raises(NetlabError, match=message):
        normalise_nodes(nodes, "lab")


def test_build_resources_order(tmp_path: object) -> None:
    """Present: lab, switch, then per node its namespaces, its cable and its address."""
    params = {
        "name": "unit",
        "state": "present",
        "state_dir": f"{tmp_path}/state",
        "nodes": [{"name": "node1", "underlay_address": "10.0.0.10/24"}],
        "sysctl": {"net.ipv4.ip_forward": 1},
    }
    paths, resources, nodes = build_resources(params)
    assert paths.dir == f"{tmp_path}/state/unit"
    assert [r.kind for r in resources] == ["lab", "bridge", "node", "veth", "address"]
    node = resources[2]
    assert isinstance(node, NodeResource)
    assert node.sysctl["net.ipv4.ip_forward"] == "1"
    assert node.sysctl["net.ipv4.conf.all.rp_filter"] == "1"
    veth = resources[3]
    assert veth.spec["netns"] == paths.underlay and veth.spec["peer_netns"] == f"{paths.dir}/node1/net"
    assert veth.spec["name"] == "node1" and veth.spec["peer"] == "eth1" and veth.spec["bridge"] == "underlay"
    assert resources[4].spec["addresses"] == ["10.0.0.10/24"] and resources[4].spec["purge"] is True
    assert nodes == params["nodes"]


def test_build_resources_absent_removes_what_is_found(tmp_path: object) -> None:
    lab = tmp_path / "state" / "unit"  # type: ignore[operator]
    (lab / "node1").mkdir(parents=True)
    (lab / "old").mkdir()
    (lab / "underlay.net").touch()
    _paths, resources, _nodes = build_resources({"name": "unit", "state": "absent", "state_dir": f"{tmp_path}/state"})
    assert [(r.kind, r.state) for r in resources] == [("node", "absent"), ("node", "absent"), ("lab", "absent")]
    assert [r.name for r in resources[:2]] == ["node1", "old"]  # type: ignore[attr-defined]
    assert isinstance(resources[-1], LabResource)


def test_build_resources_stale_nodes_go_first(tmp_path: object) -> None:
    lab = tmp_path / "state" / "unit"  # type: ignore[operator]
    (lab / "node3").mkdir(parents=True)
    params = {
        "name": "unit",
        "state": "present",
        "state_dir": f"{tmp_path}/state",
        "nodes": [{"name": "node1", "underlay_address": "10.0.0.10/24"}],
    }
    _paths, resources, _nodes = build_resources(params)
    assert [(r.kind, r.state) for r in resources[:4]] == [
        ("lab", "present"),
        ("bridge", "present"),
        ("node", "absent"),
        ("node", "present"),
    ]
    assert resources[2].name == "node3"  # type: ignore[attr-defined]


def test_build_resources_rejects_unknown_sysctl(tmp_path: object) -> None:
    params = {
        "name": "unit",
        "state_dir": f"{tmp_path}/state",
        "nodes": [{"name": "node1", "underlay_address": "10.0.0.10/24"}],
        "sysctl": {"net.ipv4.no_such_thing": 1},
    }
    with pytest.raises(NetlabError, match="does not exist on this kernel"):
        build_resources(params)


def test_node_want_keeps_running_sysctls() -> None:
    """Boot-time sysctls: a running node keeps what roles set since; a new one gets the defaults."""
    res = NodeResource({"paths": LabPaths("/run/x", "lab"), "name": "node1", "state": "present", "sysctl": NODE_SYSCTL})
    running = {"name": "node1", "running": True, "hostname": "node1", "sysctl": {"net.ipv4.ip_forward": "1"}}
    assert res.want(running) == running
    assert res.want(None)["sysctl"] == NODE_SYSCTL  # type: ignore[index]
    broken = {"name": "node1", "running": False}
    assert res.want(broken)["sysctl"] == NODE_SYSCTL  # type: ignore[index]
    renamed = {**running, "hostname": "other"}
    assert res.want(renamed)["hostname"] == "node1"  # type: ignore[index]
