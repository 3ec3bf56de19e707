# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bytecode in the node module's AnsiballZ payload (plugin_utils/_pyc.py): zipimport uses it instead of compiling,
falls back to the source whenever it does not fit, and Ansible's real payload of the node module runs with none
of Ansible's module_utils compiled on the node."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from ansible_collections.cnfs.netlab.plugins.plugin_utils import _pyc

# Code run first in a fresh interpreter: zipimport's compiler records what it compiles in `compiled`.
RECORDER = """
import json, sys, zipimport
compiled = []
_compile_source = zipimport._compile_source
def _record(pathname, source):
    compiled.append(pathname.split(".zip/", 1)[1])
    return _compile_source(pathname, source)
zipimport._compile_source = _record
"""
# Imports the zip's package "pkg" and prints the module's value, what was compiled, the code's file name and the
# traceback of an exception it raises.
IMPORTER = (
    RECORDER
    + """
sys.path.insert(0, sys.argv[1])
import traceback
import pkg.mod
try:
    pkg.mod.where()
except ValueError:
    shown = traceback.format_exc()
print(json.dumps({"value": pkg.mod.VALUE, "compiled": compiled, "filename": pkg.mod.where.__code__.co_filename,
                  "traceback": shown}))
"""
)
# Runs an AnsiballZ file (argv 1) as Ansible does and writes what was compiled to argv 2 at exit.
RUN = (
    RECORDER
    + """
import atexit, runpy
record = sys.argv[2]
atexit.register(lambda: json.dump(compiled, open(record, "w")))
sys.argv = sys.argv[1:2]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
)


def make_zip(path: Path, sources: dict[str, bytes], extra: dict[str, bytes] | None = None, pyc: bool = True) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in sources.items():
            zf.writestr(name, data)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
        if pyc:
            _pyc.add_bytecode(zf)


def import_from(path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", IMPORTER, str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


SOURCES = {"pkg/__init__.py": b"", "pkg/mod.py": b"VALUE = 1\ndef where():\n    raise ValueError('from mod')\n"}


def test_the_zip_imports_its_bytecode_and_compiles_nothing(tmp_path):
    make_zip(tmp_path / "p.zip", SOURCES)
    names = zipfile.ZipFile(tmp_path / "p.zip").namelist()
    assert sorted(names) == ["pkg/__init__.py", "pkg/__init__.pyc", "pkg/mod.py", "pkg/mod.pyc"]
    out = import_from(tmp_path / "p.zip")
    assert out["value"] == 1
    assert out["compiled"] == []
    assert out["filename"] == "<ansiballz>/pkg/mod.py"
    # The traceback names that file and shows the line, read from the zip's source.
    assert "<ansiballz>/pkg/mod.py\", line 3, in where\n    raise ValueError('from mod')" in out["traceback"]
    # Without the bytecode, zipimport compiles each source (twice each on Python 3.11).
    make_zip(tmp_path / "plain.zip", SOURCES, pyc=False)
    assert set(import_from(tmp_path / "plain.zip")["compiled"]) == {"pkg/__init__.py", "pkg/mod.py"}


def test_bytecode_of_other_source_is_not_used(tmp_path):
    # A checked hash-based pyc: compiled from VALUE = 2, beside a source that says 1.
    stale = {"pkg/mod.pyc": _pyc.pyc(b"VALUE = 2\ndef where():\n    raise ValueError('from mod')\n", "pkg/mod.py")}
    make_zip(tmp_path / "p.zip", SOURCES, extra=stale)
    out = import_from(tmp_path / "p.zip")
    assert out["value"] == 1
    assert "pkg/mod.py" in out["compiled"]


def test_bytecode_of_another_python_is_not_used(tmp_path):
    other = bytearray(_pyc.pyc(b"VALUE = 2\ndef where():\n    raise ValueError('from mod')\n", "pkg/mod.py"))
    other[0:2] = (int.from_bytes(other[0:2], "little") + 1).to_bytes(2, "little")  # another magic number
    make_zip(tmp_path / "p.zip", SOURCES, extra={"pkg/mod.pyc": bytes(other)})
    out = import_from(tmp_path / "p.zip")
    assert out["value"] == 1
    assert "pkg/mod.py" in out["compiled"]


def test_what_is_not_wanted_or_does_not_compile_keeps_only_its_source(tmp_path):
    with zipfile.ZipFile(tmp_path / "p.zip", "w") as zf:
        zf.writestr("a/keep.py", b"X = 1\n")
        zf.writestr("a/skip.py", b"X = 1\n")
        zf.writestr("a/broken.py", b"def (:\n")
        zf.writestr("a/data.txt", b"not python\n")
        assert _pyc.add_bytecode(zf, lambda name: name != "a/skip.py") == 1
    assert sorted(zipfile.ZipFile(tmp_path / "p.zip").namelist()) == [
        "a/broken.py",
        "a/data.txt",
        "a/keep.py",
        "a/keep.pyc",
        "a/skip.py",
    ]


def test_the_wrapper_adds_bytecode_only_without_ansiballz_extensions(tmp_path):
    calls = []

    def original(zf, date_time, fqn, data, path, manager):
        calls.append(fqn)
        zf.writestr("m.py", data)

    wrapped = _pyc.wrap_add_module_to_zip(original, lambda name: True)
    for extensions, expected in (((), ["m.py", "m.pyc"]), (("coverage",), ["m.py"])):
        with zipfile.ZipFile(tmp_path / "p.zip", "w") as zf:
            wrapped(zf, None, "m", b"X = 1\n", "/m.py", SimpleNamespace(extension_names=extensions))
            assert sorted(zf.namelist()) == expected
    assert calls == ["m", "m"]


def test_the_tag_names_this_python():
    assert importlib.util.MAGIC_NUMBER.hex() in _pyc.tag()


# Ansible's own builder (conftest.py's ansible_child) makes a module's payload with the action plugin's wrapper in
# place; then the payload runs as Ansible runs it on a node (the module fails at once on its options, after
# importing everything), through RUN.
BUILD_AND_RUN = """
from ansible_collections.cnfs.netlab.plugins.plugin_utils import _action, _pyc
work, run, module = argv
build = module_common._add_module_to_zip
module_common._add_module_to_zip = _pyc.wrap_add_module_to_zip(build, lambda n: _action.wants_pyc(module, n))
wrapper = os.path.join(work, f"AnsiballZ_{module}.py")
with open(wrapper, "wb") as f:
    f.write(build_payload(module, work))
record = os.path.join(work, "compiled.json")
proc = subprocess.run([sys.executable, "-c", run, wrapper, record], capture_output=True, text=True)
print(json.dumps({"stdout": proc.stdout, "stderr": proc.stderr[-2000:], "compiled": json.load(open(record))}))
"""


@pytest.mark.parametrize("module", ["node", "veth"])
def test_the_payload_runs_without_compiling_anything(tmp_path, module, ansible_child):
    # XDG_CACHE_HOME: the node module's own bytecode cache, empty.
    out = ansible_child(BUILD_AND_RUN, str(tmp_path), RUN, module, env={"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    result = json.loads(out["stdout"].strip().splitlines()[-1])
    # It ran for real: Ansible's argument validation turned the options down.
    expected = {"node": "Unsupported parameters", "veth": "missing required arguments: name"}[module]
    assert result["failed"] is True and expected in result["msg"], out
    # Nothing compiled by zipimport: the module and its module_utils came as bytecode, except this collection's
    # module_utils for node, which its own bytecode cache (module_utils/_bytecode.py) compiled into its directory.
    assert out["compiled"] == []
    cache = tmp_path / "xdg" / "cnfs-netlab" / "bytecode"
    if module == "node":
        assert any(".module_utils._node." in name for name in os.listdir(cache))
    else:
        assert not cache.exists()
