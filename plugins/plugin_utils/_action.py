# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin of every cnfs.netlab module (plugins/action/<module>.py): the module, run exactly like any
other (ansible.builtin.normal), with three changes to its AnsiballZ payload: two to how Ansible builds it, which
every host's worker of the first task of the module waits for, and one to what it holds.

1. The payload an earlier run built is reused (plugin_utils/_payload.py): Ansible keeps it only for one run, and
   building it again took 0.2 s of every stage apply. In 2-node stage-4 runs, the node task took 0.43 s with it
   and 0.64 s without (medians of 8 runs each).
2. The worker's garbage collector is off while Ansible builds and runs the module and reads its result. The build
   parses the module and its module_utils (about 680 KB of Python for node) into ASTs, and their bursts of
   allocations kept setting off full collections over the whole heap the worker inherited from ansible-playbook:
   half of the build (0.43-0.54 s with the collector, 0.21-0.27 s without, measured outside Ansible).
   This is safe because a worker is a fork that runs this one task and exits. The ASTs and the module's JSON
   result hold no reference cycles, so reference counting frees them as before. The collector is turned on
   again before the result goes back, and it stays off if something else had already turned it off.
3. The payload holds bytecode compiled on the controller beside its sources (plugin_utils/_pyc.py), which the
   node otherwise compiles on every run, twice on Python 3.11: on a lab node a warm node module's CPU went from
   0.33 to 0.24 s (user and system, means of 12 runs each). The node module's own bytecode cache on the node
   (module_utils/_bytecode.py) serves this collection's module_utils, so its payload leaves those out.
"""

from __future__ import annotations

import functools
import gc
import os
from typing import Any

from ansible import constants as C
from ansible.executor import module_common
from ansible.module_utils import ansible_release
from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.plugins.loader import module_utils_loader

from ansible_collections.cnfs.netlab.plugins.plugin_utils import _payload, _pyc

COLLECTION = "cnfs.netlab."
_PLUGINS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MODULE_UTILS = os.path.join(_PLUGINS, "module_utils")
_MODULE_UTILS_IN_ZIP = "ansible_collections/cnfs/netlab/plugins/module_utils/"
# The modules that install the bytecode cache on the node (module_utils/_bytecode.py), and the files of the
# collection's module_utils they import before it is in place.
_OWN_BYTECODE_CACHE = frozenset({"node"})
_BEFORE_THE_CACHE = ("__init__.py", "_bytecode.py")


def wants_pyc(module: str, name: str) -> bool:
    """Whether the payload of ``module`` gets bytecode for its zip entry ``name``."""
    if module not in _OWN_BYTECODE_CACHE or not name.startswith(_MODULE_UTILS_IN_ZIP):
        return True
    return name[len(_MODULE_UTILS_IN_ZIP) :] in _BEFORE_THE_CACHE


def payload_prefix(module: str) -> str:
    """The start of the module's payload file name in Ansible's per-run directory (then its compression and
    extensions)."""
    return f"ansible_collections.cnfs.netlab.plugins.modules.{module}-"


def kept_directory(module: str) -> str | None:
    """The payload cache's directory for this module as it is now (None: no cache)."""
    root = _payload.cache_root()
    if root is None:
        return None
    try:
        # Where Ansible looks for module_utils (a private API, hence the broad except: no cache rather than a
        # failure).
        paths = module_utils_loader._get_paths(subdirs=False)  # pylint: disable=protected-access
        search = [p for p in paths if os.path.isdir(p)]
        source = os.path.join(_PLUGINS, "modules", f"{module}.py")
        key = _payload.fingerprint(source, _MODULE_UTILS, f"{ansible_release.__version__} {_pyc.tag()}", search)
    except Exception:  # pylint: disable=broad-exception-caught
        return None
    return os.path.join(root, f"{module}-{key}")


class ModuleAction(NormalAction):
    """ansible.builtin.normal with the payload kept, its bytecode, and the collector off (see the module's text)."""

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        resolved = self._task.resolved_action or ""
        if not resolved.startswith(COLLECTION):
            return super().run(tmp, task_vars)
        module = resolved[len(COLLECTION) :]
        was_enabled = gc.isenabled()
        gc.disable()
        run_cache = os.path.join(C.DEFAULT_LOCAL_TMP, "ansiballz_cache")
        prefix = payload_prefix(module)
        # Once this run's directory holds the payload (every worker after the first ones), nothing is left to do.
        kept = None if any(_payload.payload_names(run_cache, prefix)) else kept_directory(module)
        # A build in this worker (none when the payload was seeded) adds the bytecode (plugin_utils/_pyc.py). The
        # worker is a fork that runs this one task; the function is put back all the same.
        build = getattr(module_common, "_add_module_to_zip", None)
        if build is not None:
            wanted = functools.partial(wants_pyc, module)
            module_common._add_module_to_zip = _pyc.wrap_add_module_to_zip(build, wanted)  # pylint: disable=protected-access
        try:
            _payload.seed(run_cache, prefix, kept)
            return super().run(tmp, task_vars)
        finally:
            if build is not None:
                module_common._add_module_to_zip = build  # pylint: disable=protected-access
            _payload.keep(run_cache, prefix, kept)
            if was_enabled:
                gc.enable()
