# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module_utils bytecode cache, run the way a module runs it: a fresh interpreter that imports this
collection's module_utils from a zip (the AnsiballZ payload's layout), with the cache installed first."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils import _bytecode

PACKAGE_DIR = "ansible_collections/cnfs/netlab/plugins/module_utils"
NAME = "ansible_collections.cnfs.netlab.plugins.module_utils._probe"

PROBE = """
import inspect


def answer():
    return VALUE


def fails():
    raise RuntimeError("from the probe")


VALUE = 42
SOURCE = inspect.getsource(answer)
"""

# Runs in a fresh interpreter (-I -S: nothing but the zip on the path). With COMPILE_FAILS, compile() raises:
# the import can only work from the cache.
RUNNER = """
import builtins, json, os, sys, traceback
sys.path.insert(0, sys.argv[1])
from ansible_collections.cnfs.netlab.plugins.module_utils import _bytecode
installed = _bytecode.install()
if os.environ.get("COMPILE_FAILS"):
    def refuse(*args, **kwargs):
        raise AssertionError("compile() was called")
    builtins.compile = refuse
from ansible_collections.cnfs.netlab.plugins.module_utils import _probe
try:
    _probe.fails()
except RuntimeError:
    tb = traceback.format_exc()
print(json.dumps({"installed": installed, "value": _probe.answer(), "source": _probe.SOURCE,
                  "file": _probe.__file__, "traceback": tb}))
"""


def make_zip(path: Path, probe: str = PROBE) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        parts = PACKAGE_DIR.split("/")
        for i in range(1, len(parts) + 1):
            z.writestr("/".join(parts[:i]) + "/__init__.py", "")
        z.writestr(f"{PACKAGE_DIR}/_bytecode.py", Path(_bytecode.__file__).read_text())
        z.writestr(f"{PACKAGE_DIR}/_probe.py", probe)
    return path


def run(zip_path: Path, cache: Path | str, compile_fails: bool = False) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), _bytecode.ENVIRONMENT: str(cache)}
    if compile_fails:
        env["COMPILE_FAILS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(zip_path)], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def entries(cache: Path, name: str = NAME) -> list[Path]:
    return sorted(p for p in cache.iterdir() if p.name.startswith(name + "."))


def test_second_run_loads_the_code_from_the_cache(tmp_path: Path) -> None:
    payload, cache = make_zip(tmp_path / "payload.zip"), tmp_path / "cache"
    first = run(payload, cache)
    assert first["installed"] and first["value"] == 42
    [entry] = entries(cache)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600 and stat.S_IMODE(cache.stat().st_mode) == 0o700
    # Another run's zip (Ansible writes a new one each time), compile() forbidden: the code comes from the cache.
    other = make_zip(tmp_path / "other.zip")
    second = run(other, cache, compile_fails=True)
    assert second["value"] == 42
    # inspect and tracebacks read this run's zip: the udp backend sends its forwarder's source this way.
    assert second["source"].startswith("def answer():")
    assert second["file"] == f"{other}/{PACKAGE_DIR}/_probe.py"
    assert f'File "{other}/{PACKAGE_DIR}/_probe.py", line 10, in fails' in second["traceback"]
    assert 'raise RuntimeError("from the probe")' in second["traceback"]


def test_a_changed_source_compiles_and_replaces_its_old_entry(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    run(make_zip(tmp_path / "a.zip"), cache)
    [old] = entries(cache)
    changed = run(make_zip(tmp_path / "b.zip", PROBE.replace("VALUE = 42", "VALUE = 7")), cache)
    assert changed["value"] == 7
    [new] = entries(cache)
    assert new != old and not old.exists()


def test_a_damaged_entry_is_compiled_again(tmp_path: Path) -> None:
    payload, cache = make_zip(tmp_path / "payload.zip"), tmp_path / "cache"
    run(payload, cache)
    [entry] = entries(cache)
    entry.write_bytes(b"not marshal data")
    assert run(payload, cache)["value"] == 42
    assert entries(cache) == [entry] and entry.read_bytes() != b"not marshal data"


def test_an_entry_of_another_user_or_writable_by_others_is_not_read(tmp_path: Path) -> None:
    payload, cache = make_zip(tmp_path / "payload.zip"), tmp_path / "cache"
    run(payload, cache)
    [entry] = entries(cache)
    entry.chmod(0o666)
    with pytest.raises(AssertionError, match=r"compile\(\) was called"):
        run(payload, cache, compile_fails=True)
    if os.geteuid() == 0:
        run(payload, cache)  # written again, 0600
        os.chown(entries(cache)[0], 65534, 65534)
        with pytest.raises(AssertionError, match=r"compile\(\) was called"):
            run(payload, cache, compile_fails=True)


def test_no_cache_in_a_directory_others_can_write_or_when_turned_off(tmp_path: Path) -> None:
    payload, shared = make_zip(tmp_path / "payload.zip"), tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    result = run(payload, shared)
    assert not result["installed"] and result["value"] == 42
    assert list(shared.iterdir()) == []
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    assert not run(payload, link)["installed"]
    assert not run(payload, "0")["installed"]


def test_cache_directory_follows_xdg_and_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_bytecode.ENVIRONMENT, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert _bytecode.cache_directory() == "/somewhere/cache/cnfs-netlab/bytecode"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "/home/someone")
    assert _bytecode.cache_directory() == "/home/someone/.cache/cnfs-netlab/bytecode"
    monkeypatch.setenv(_bytecode.ENVIRONMENT, "0")
    assert _bytecode.cache_directory() is None
    monkeypatch.setenv(_bytecode.ENVIRONMENT, "/var/tmp/x")
    assert _bytecode.cache_directory() == "/var/tmp/x"
