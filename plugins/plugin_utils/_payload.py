# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cache on the controller of each cnfs.netlab module's AnsiballZ payload, kept from one run to the next.

Ansible builds a module's payload (a zip of the module and of every module_util it imports) once per
ansible-playbook run. It keeps it in the run's own temporary directory (``ansiballz_cache`` under
``DEFAULT_LOCAL_TMP``, removed at exit), and every host's worker of the first task that runs the module waits for
that build. For cnfs.netlab.node, Ansible parses about 680 KB of Python into ASTs: about 0.2 s even with the
garbage collector off (plugin_utils/_action.py), on the critical path of every stage apply.

:func:`seed` copies the file an earlier run built into this run's directory before Ansible looks for it.
:func:`keep` copies the file this run built out of that directory afterwards. Ansible then finds its own file, in
its own format: nothing here reads or writes the payload, it only copies the file Ansible wrote.

The files are kept in ``~/.cache/cnfs-netlab/ansiballz/<module>-<fingerprint>/`` (``$XDG_CACHE_HOME``). The
fingerprint is the SHA-256 of ansible-core's version (with the tag of the bytecode the action plugin adds,
plugin_utils/_pyc.py: its format and the controller's Python magic number); the place of every module_utils
directory Ansible searches (its own, ``~/.ansible/plugins/module_utils``, a playbook's ``module_utils/`` ...) and
the name, size and time of each of their sources; and the content of the module and of every file of this
collection's module_utils. A change to any of them builds afresh. Keeping a new fingerprint removes the module's
others.

The files are pickles that Ansible loads, and whoever can write them could run code as the controller's user.
So the cache is used only while its directories and files belong to that user and nobody else can write them. A
file that does not end the way every pickle ends (a copy cut short) is not used. Anything unusual means that
Ansible builds the payload as before. ``CNFS_NETLAB_PAYLOAD_CACHE=0`` in the controller's environment turns the
cache off; any other value is the directory to use. Deleting the directory is always safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat

from ansible_collections.cnfs.netlab.plugins.module_utils._bytecode import (
    cache_directory,
    own_and_private,
    usable_directory,
    write_private,
)

ENVIRONMENT = "CNFS_NETLAB_PAYLOAD_CACHE"
# Ansible's own file names in its per-run directory, besides the payload: the build's lock and its temporary file.
_NOT_PAYLOAD = (".lock", "-part")
_PICKLE_STOP = b"."


def cache_root() -> str | None:
    """The cache directory, or None when the environment turns the cache off."""
    return cache_directory(ENVIRONMENT, "ansiballz")


def fingerprint(module: str, module_utils: str, builder: str, search_dirs: list[str]) -> str:
    """What the payload is built from: the module and this collection's module_utils by content; what builds it
    (``builder``: ansible-core's version and the tag of the bytecode added to it); and every module_utils
    directory Ansible searches (its own, ~/.ansible/plugins/module_utils, a playbook's module_utils/ ...) by place
    and by the name, size and time of each of their sources. Raises OSError."""
    digest = hashlib.sha256()
    digest.update(f"builder {builder}\0".encode())
    for directory in search_dirs:
        digest.update(f"{directory}\0".encode())
        for root, dirs, files in os.walk(directory):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(n for n in files if n.endswith(".py")):
                path = os.path.join(root, name)
                st = os.stat(path)
                digest.update(f"{os.path.relpath(path, directory)} {st.st_size} {st.st_mtime_ns}\0".encode())
    sources = [module] + [os.path.join(module_utils, n) for n in sorted(os.listdir(module_utils)) if n.endswith(".py")]
    for path in sources:
        with open(path, "rb") as f:
            data = f.read()
        digest.update(f"{os.path.basename(path)} {len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def payload_names(directory: str, prefix: str) -> list[str]:
    """The payload files of the module named by prefix in directory (not Ansible's lock or temporary files)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [n for n in names if n.startswith(prefix) and not n.endswith(_NOT_PAYLOAD) and ".tmp" not in n]


def _usable_file(path: str) -> bool:
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or not own_and_private(st) or st.st_size == 0:
            return False
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == _PICKLE_STOP
    except OSError:
        return False


def _copy(source: str, target: str) -> bool:
    """A parallel worker sees no file at target or the whole file."""
    try:
        with open(source, "rb") as src:
            data = src.read()
    except OSError:
        return False
    return write_private(target, data)


def _copy_all(source: str, target: str, names: list[str]) -> int:
    return sum(
        _copy(os.path.join(source, n), os.path.join(target, n)) for n in names if _usable_file(os.path.join(source, n))
    )


def seed(run_cache: str, prefix: str, kept: str | None) -> int:
    """Copy the payloads kept for this fingerprint (``kept``) into Ansible's per-run directory, unless it already
    holds them. Returns how many were copied."""
    if kept is None or not usable_directory(kept, create=False):
        return 0
    names = [n for n in payload_names(kept, prefix) if not os.path.exists(os.path.join(run_cache, n))]
    if not names or not usable_directory(run_cache, create=True):
        return 0
    return _copy_all(kept, run_cache, names)


def keep(run_cache: str, prefix: str, kept: str | None) -> int:
    """Copy the payloads Ansible built in this run into the cache for this fingerprint (``kept``, a directory named
    ``<module>-<fingerprint>``), and remove the module's other fingerprints. Returns how many were copied."""
    if kept is None:
        return 0
    names = [n for n in payload_names(run_cache, prefix) if not os.path.exists(os.path.join(kept, n))]
    if not names:
        return 0
    root = os.path.dirname(kept)
    if not usable_directory(root, create=True) or not usable_directory(kept, create=True):
        return 0
    copied = _copy_all(run_cache, kept, names)
    # The same module's other fingerprints, and those of the layout before each module had its own (bare digests).
    family = re.compile(rf"(?:{re.escape(os.path.basename(kept).rpartition('-')[0])}-)?[0-9a-f]{{64}}")
    with contextlib.suppress(OSError):
        for other in os.listdir(root):
            path = os.path.join(root, other)
            if path != kept and family.fullmatch(other) and os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
    return copied
