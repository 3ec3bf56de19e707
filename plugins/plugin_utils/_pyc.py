# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compiled bytecode beside the sources in a cnfs.netlab module's AnsiballZ payload.

Ansible sends a module and its module_utils as sources in a zip, and the node imports them from it with
zipimport, which compiles every source on every run. On Python 3.11 it does so twice per import
(``zipimporter.find_spec`` calls ``get_filename``, which compiles, and the import compiles again). For the node
module that was 126 compiles of Ansible's own module_utils (``basic`` and what it imports): 0.15 s of a warm
run's 0.31 s of CPU on a lab node. Those modules are imported by Ansible's loader before the module's first line,
so the module's own bytecode cache on the node (module_utils/_bytecode.py, for this collection's module_utils)
cannot reach them.

:func:`add_bytecode` writes, for each source in the zip, a ``.pyc`` entry beside it, compiled on the
controller. zipimport looks for ``name.pyc`` before ``name.py``, and it falls back to the source by itself
whenever the bytecode does not fit:

- each entry is a *checked* hash-based pyc (PEP 552): zipimport hashes the source in the zip and uses the
  bytecode only when the hash matches, so a ``.pyc`` never stands for other source than its own;
- a node whose Python has another magic number (another minor version than the controller's) ignores every
  entry and compiles the sources, as before.

Left as they are: the payload of a run with one of Ansible's AnsiballZ extensions (a debugger, coverage), which
map code to the sources' real paths; and what the caller does not want (plugin_utils/_action.py leaves out, for
the node module, this collection's module_utils, which that module's own bytecode cache on the node serves, except
the two files imported before it).

Code compiled here cannot know the zip's place on the node (a new temporary directory each run), so its file
name is ``<ansiballz>/`` and the path in the zip, like ``<ansiballz>/ansible/module_utils/basic.py``.
Tracebacks still show each line's source, which Python reads from the zip through the module's loader.
"""

from __future__ import annotations

import importlib.util
import marshal
import struct
import zipfile
from collections.abc import Callable
from typing import Any

# PEP 552 flags: bit 0, hash-based; bit 1, check the source.
_CHECKED_HASH = struct.pack("<I", 0b11)
FILENAME_PREFIX = "<ansiballz>/"
# Changes to what add_bytecode writes change this, and with it the payload cache's fingerprint.
FORMAT = "pyc-checked-hash-1"


def tag() -> str:
    """What the bytecode depends on besides the sources: this format and the controller's magic number."""
    return f"{FORMAT} {importlib.util.MAGIC_NUMBER.hex()}"


def pyc(source: bytes, name: str) -> bytes:
    """A checked hash-based pyc of ``source`` (the zip's entry ``name``), for this Python. Raises SyntaxError,
    ValueError."""
    code = compile(source, FILENAME_PREFIX + name, "exec", dont_inherit=True, optimize=0)
    return importlib.util.MAGIC_NUMBER + _CHECKED_HASH + importlib.util.source_hash(source) + marshal.dumps(code)


def add_bytecode(zf: zipfile.ZipFile, wanted: Callable[[str], bool] = lambda name: True) -> int:
    """Write a ``.pyc`` beside each ``.py`` of the zip being written that is ``wanted`` and has none yet. A source
    that does not compile here (another Python's syntax) keeps only its source. Returns how many were written."""
    names = set(zf.namelist())
    written = 0
    for info in list(zf.infolist()):
        name = info.filename
        if not name.endswith(".py") or name + "c" in names or not wanted(name):
            continue
        try:
            data = pyc(zf.read(name), name)
        except (SyntaxError, ValueError):
            continue
        entry = zipfile.ZipInfo(name + "c", date_time=info.date_time)
        entry.compress_type = info.compress_type
        zf.writestr(entry, data)
        written += 1
    return written


def wrap_add_module_to_zip(original: Any, wanted: Callable[[str], bool]) -> Any:
    """Ansible's ``module_common._add_module_to_zip`` (the build's last write into the zip, after every
    module_util), followed by :func:`add_bytecode`; unchanged when an AnsiballZ extension is on."""

    def add_module_to_zip(zf: zipfile.ZipFile, date_time: Any, *args: Any, **kwargs: Any) -> None:
        original(zf, date_time, *args, **kwargs)
        manager = next((a for a in (*args, *kwargs.values()) if hasattr(a, "extension_names")), None)
        if manager is None or manager.extension_names:
            return
        add_bytecode(zf, wanted)

    return add_module_to_zip
