# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's cache of the node module's AnsiballZ payload (plugin_utils/_payload.py): its fingerprint,
its ownership rules, and, with Ansible's real payload builder, that a seeded run does not build again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.cnfs.netlab.plugins.plugin_utils import _payload

PREFIX = "ansible_collections.cnfs.netlab.plugins.modules.node-"
NAME = PREFIX + "ZIP_DEFLATED-none"
NOBODY = 65534


def tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A module, a module_utils directory and an Ansible module_utils directory, all small."""
    module = tmp_path / "node.py"
    module.write_text("import x\n")
    utils = tmp_path / "module_utils"
    utils.mkdir()
    (utils / "_a.py").write_text("A = 1\n")
    ansible_utils = tmp_path / "ansible_module_utils"
    (ansible_utils / "common").mkdir(parents=True)
    (ansible_utils / "basic.py").write_text("B = 1\n")
    (ansible_utils / "common" / "c.py").write_text("C = 1\n")
    return module, utils, ansible_utils


def key(module: Path, utils: Path, ansible_utils: Path, version: str = "2.19.0", more: tuple[Path, ...] = ()) -> str:
    return _payload.fingerprint(str(module), str(utils), version, [str(ansible_utils), *map(str, more)])


def test_fingerprint_follows_every_input_and_nothing_else(tmp_path):
    module, utils, ansible_utils = tree(tmp_path)
    first = key(module, utils, ansible_utils)
    assert key(module, utils, ansible_utils) == first
    # Bytecode beside Ansible's sources is not part of the payload.
    (ansible_utils / "__pycache__").mkdir()
    (ansible_utils / "__pycache__" / "basic.cpython-311.pyc").write_bytes(b"x")
    assert key(module, utils, ansible_utils) == first
    assert key(module, utils, ansible_utils, version="2.19.1") != first

    (utils / "_a.py").write_text("A = 2\n")  # same size, other content
    second = key(module, utils, ansible_utils)
    assert second != first
    (utils / "_b.py").write_text("")
    third = key(module, utils, ansible_utils)
    assert third != second
    module.write_text("import y\n")
    fourth = key(module, utils, ansible_utils)
    assert fourth != third
    os.utime(ansible_utils / "common" / "c.py", ns=(1, 1))
    fifth = key(module, utils, ansible_utils)
    assert fifth != fourth
    # A playbook's module_utils/ (Ansible searches it too): its place and its files count.
    playbook_utils = tmp_path / "playbook" / "module_utils"
    playbook_utils.mkdir(parents=True)
    sixth = key(module, utils, ansible_utils, more=(playbook_utils,))
    assert sixth != fifth
    (playbook_utils / "basic.py").write_text("X = 1\n")
    assert key(module, utils, ansible_utils, more=(playbook_utils,)) != sixth


def payload(path: Path, data: bytes = b"\x80\x04payload.") -> Path:
    path.write_bytes(data)
    return path


def test_keep_then_seed_round_trip(tmp_path):
    run1, root = tmp_path / "run1", tmp_path / "cache"
    run1.mkdir()
    payload(run1 / NAME)
    (run1 / (NAME + ".lock")).write_text("")  # Ansible's lock and temporary file are not payloads
    payload(run1 / (NAME + "-part"))
    payload(run1 / "ansible.modules.ping-ZIP_DEFLATED-none")  # another module's payload is not ours
    # The module's other fingerprint, and one of the layout before modules had their own, go; another
    # module's fingerprint and what the cache does not name stay.
    for stale in ("node-" + "0" * 64, "1" * 64, "veth-" + "2" * 64, "notes"):
        (root / stale).mkdir(parents=True)
        payload(root / stale / NAME)
    kept = root / ("node-" + "f" * 64)

    assert _payload.keep(str(run1), PREFIX, str(kept)) == 1
    assert sorted(os.listdir(root)) == ["node-" + "f" * 64, "notes", "veth-" + "2" * 64]
    assert os.listdir(kept) == [NAME]
    assert (kept / NAME).stat().st_mode & 0o777 == 0o600
    assert kept.stat().st_mode & 0o777 == 0o700
    assert _payload.keep(str(run1), PREFIX, str(kept)) == 0, "kept already"

    run2 = tmp_path / "run2"
    assert _payload.seed(str(run2), PREFIX, str(kept)) == 1
    assert (run2 / NAME).read_bytes() == (run1 / NAME).read_bytes()
    assert _payload.seed(str(run2), PREFIX, str(kept)) == 0, "this run has it already"
    assert _payload.seed(str(tmp_path / "run3"), PREFIX, None) == 0, "off"
    assert _payload.seed(str(tmp_path / "run3"), PREFIX, str(root / "none")) == 0, "nothing kept"


@pytest.mark.parametrize("damage", ["cut short", "group-writable file", "foreign file", "shared directory", "symlink"])
def test_seed_uses_nothing_anyone_else_could_have_written(tmp_path, damage):
    kept = tmp_path / "cache" / "f1"
    kept.mkdir(parents=True, mode=0o700)
    target = payload(kept / NAME)
    target.chmod(0o600)
    if damage == "cut short":
        payload(target, b"\x80\x04payl")
    elif damage == "group-writable file":
        target.chmod(0o620)
    elif damage == "foreign file":
        os.chown(target, NOBODY, NOBODY)
    elif damage == "shared directory":
        kept.chmod(0o777)
    else:
        real = payload(tmp_path / "elsewhere")
        target.unlink()
        target.symlink_to(real)
    run = tmp_path / "run"
    assert _payload.seed(str(run), PREFIX, str(kept)) == 0
    assert not (run / NAME).exists()


def test_cache_root_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CNFS_NETLAB_PAYLOAD_CACHE", "0")
    assert _payload.cache_root() is None
    monkeypatch.setenv("CNFS_NETLAB_PAYLOAD_CACHE", str(tmp_path / "here"))
    assert _payload.cache_root() == str(tmp_path / "here")
    monkeypatch.delenv("CNFS_NETLAB_PAYLOAD_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _payload.cache_root() == str(tmp_path / "xdg" / "cnfs-netlab" / "ansiballz")


# Ansible's own payload builder (conftest.py's ansible_child): build the node module's payload in run 1, keep it,
# seed run 2 and build again with the AST walk forbidden.
BUILDER = """
from ansible_collections.cnfs.netlab.plugins.plugin_utils import _payload
work, kept = argv
prefix = "ansible_collections.cnfs.netlab.plugins.modules.node-"


def build(run):
    cache = os.path.join(work, run, "ansiballz_cache")
    seeded = _payload.seed(cache, prefix, kept)
    data = build_payload("node", os.path.join(work, run)).decode()
    kept_now = _payload.keep(cache, prefix, kept)
    return {"seeded": seeded, "kept": kept_now, "zip": data[data.index("zip_data="):][:200000]}


first = build("run1")
def refuse(*args, **kwargs):
    raise AssertionError("the payload was built again")
module_common.recursive_finder = refuse
second = build("run2")
print(json.dumps({"first": first, "second": second}))
"""


def test_ansible_uses_the_seeded_payload_instead_of_building(tmp_path, ansible_child):
    out = ansible_child(BUILDER, str(tmp_path), str(tmp_path / "kept" / "f1"))
    assert (out["first"]["seeded"], out["first"]["kept"]) == (0, 1)
    assert (out["second"]["seeded"], out["second"]["kept"]) == (1, 0)
    assert out["second"]["zip"] == out["first"]["zip"]
