# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bytecode cache on the managed node for this collection's module_utils.

Ansible sends a module's module_utils as sources inside the AnsiballZ zip, and Python's zipimport compiles each
of them again on every run: it never writes bytecode. For the node module that is about 270 KB of source, 0.08 to
0.1 s of CPU per node and run, a quarter of the module's time on a node that needs no change. :func:`install`
puts a finder in front of zipimport for this collection's module_utils only. It keeps their compiled code in
``~/.cache/cnfs-netlab/bytecode`` (``$XDG_CACHE_HOME``): one file per module and Python version, named by the
module, the interpreter's cache tag and the SHA-256 of its magic number and the source, so a changed source or
another Python never reads a stale entry (what ``__pycache__`` does beside a source file, by content instead of
by time stamp). Writing a module's new entry removes its older ones: the cache holds one version of the
collection, about 0.5 MB.

The cache is used only while its directory and files belong to the user the module runs as and nobody else can
write them, because whoever can write the cache can run code as that user. Anything else (no home, a read-only
or shared directory, a damaged entry) compiles as before. ``CNFS_NETLAB_BYTECODE_CACHE=0`` in the module's
environment turns the cache off; any other value is the directory to use.

Deleting the directory at any time is safe: the next run compiles again and writes it back.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import marshal
import os
import stat
import sys
import types
from typing import Any

PACKAGE = "ansible_collections.cnfs.netlab.plugins.module_utils."
ENVIRONMENT = "CNFS_NETLAB_BYTECODE_CACHE"


def cache_directory(environment: str = ENVIRONMENT, name: str = "bytecode") -> str | None:
    """``~/.cache/cnfs-netlab/<name>`` (``$XDG_CACHE_HOME``), or the directory the environment variable names, or
    None when it is ``0``. (Also the controller's payload cache, plugin_utils/_payload.py.)"""
    setting = os.environ.get(environment, "")
    if setting == "0":
        return None
    if setting:
        return setting
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cnfs-netlab", name)


def own_and_private(st: os.stat_result) -> bool:
    """Belongs to this process's user, and nobody else can write it."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def usable_directory(directory: str, create: bool = True) -> bool:
    """Creates the directory (0700) if needed and asked; True if it is a real directory of ours that only we can
    write."""
    try:
        if create:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and own_and_private(st)


def write_private(path: str, data: bytes) -> bool:
    """Write a 0600 file through a temporary one beside it, then rename: a parallel run reads the old file or the
    whole new one. False (and nothing left behind) on any error. (Also the controller's payload cache.)"""
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temp, path)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        return False


class _CachingLoader:
    """Loads one module of the zip: its source, file name and zipimporter, with the code from the cache."""

    def __init__(self, importer: Any, directory: str, filename: str, source: str) -> None:
        self._importer = importer
        self._directory = directory
        self._filename = filename
        self._source = source

    def __getattr__(self, name: str) -> Any:  # get_data, get_resource_reader ...: the zip's
        return getattr(self._importer, name)

    def get_source(self, fullname: str) -> str:  # tracebacks, inspect.getsource
        return self._source

    def get_filename(self, fullname: str) -> str:
        return self._filename

    def is_package(self, fullname: str) -> bool:
        return False

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        # What every loader does with a module's code.
        exec(self.get_code(module.__name__), module.__dict__)  # pylint: disable=exec-used

    def get_code(self, fullname: str) -> Any:
        source = self._source.encode()
        prefix = f"{fullname}.{sys.implementation.cache_tag}."
        digest = hashlib.sha256(importlib.util.MAGIC_NUMBER + fullname.encode() + b"\0" + source).hexdigest()
        path = os.path.join(self._directory, prefix + digest)
        code = self._read(path)
        if code is None:
            code = compile(source, self._filename, "exec", dont_inherit=True)
            self._write(path, code)
            self._remove_older(prefix, path)
        else:
            # The zip's file name differs on every run: tracebacks and inspect must name this run's.
            import _imp  # pylint: disable=import-outside-toplevel

            _imp._fix_co_filename(code, self._filename)  # pylint: disable=protected-access
        return code

    @staticmethod
    def _read(path: str) -> Any:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            try:
                if not own_and_private(os.fstat(f.fileno())):
                    return None
                code = marshal.loads(f.read())
            except (OSError, EOFError, ValueError, TypeError):
                return None
        return code if isinstance(code, types.CodeType) else None

    @staticmethod
    def _write(path: str, code: Any) -> None:
        write_private(path, marshal.dumps(code))

    def _remove_older(self, prefix: str, keep: str) -> None:
        try:
            names = os.listdir(self._directory)
        except OSError:
            return
        for name in names:
            path = os.path.join(self._directory, name)
            if name.startswith(prefix) and not name.endswith(".tmp") and path != keep:
                with contextlib.suppress(OSError):
                    os.unlink(path)


class _Finder:
    """On sys.meta_path: this collection's module_utils, when they come from a zip (the AnsiballZ payload), load
    through the cache. Not through zipimporter.find_spec: on Python 3.11 it compiles the source to answer, and
    the import compiles it again."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith(PACKAGE) or not path:
            return None
        for entry in path:
            importer = sys.path_importer_cache.get(entry)
            if type(importer).__name__ != "zipimporter":
                continue
            try:
                if importer.is_package(fullname):
                    return None
                source = importer.get_source(fullname)
            except ImportError:  # zipimport.ZipImportError: not in this zip
                continue
            if source is None:
                continue
            filename = os.path.join(importer.archive, importer.prefix, fullname.rpartition(".")[2] + ".py")
            spec = importlib.machinery.ModuleSpec(
                fullname, _CachingLoader(importer, self.directory, filename, source), origin=filename
            )
            spec.has_location = True
            return spec
        return None


def install() -> bool:
    """Put the cache in front of zipimport for this collection's module_utils (once). True if it is in place."""
    if any(isinstance(f, _Finder) for f in sys.meta_path):
        return True
    directory = cache_directory()
    if directory is None or not usable_directory(directory):
        return False
    # Just before the path finder, which would hand the zip's modules to zipimport: earlier finders (the
    # interpreter's built-in and frozen modules, a test harness's own at the front) keep their place.
    path_finder = importlib.machinery.PathFinder
    at = sys.meta_path.index(path_finder) if path_finder in sys.meta_path else len(sys.meta_path)
    sys.meta_path.insert(at, _Finder(directory))
    return True
