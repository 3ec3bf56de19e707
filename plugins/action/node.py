# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of cnfs.netlab.node: the module, run exactly like any other (ansible.builtin.normal), with two
changes to how Ansible builds its AnsiballZ payload, which every host's worker of a node task waits for.

1. The payload an earlier run built is reused (plugin_utils/_payload.py): Ansible keeps it only for one run, and
   building it again took 0.2 s of every stage apply. In 2-node stage-4 runs, the node task took 0.43 s with it
   and 0.64 s without (medians of 8 runs each).
2. The worker's garbage collector is off while Ansible builds and runs the module and reads its result. The build
   parses about 680 KB of Python (this collection's module_utils and Ansible's) into ASTs, and their bursts of
   allocations kept setting off full collections over the whole heap the worker inherited from ansible-playbook:
   half of the build (0.43-0.54 s with the collector, 0.21-0.27 s without, measured outside Ansible).
   This is safe because a worker is a fork that runs this one task and exits. The ASTs and the module's JSON
   result hold no reference cycles, so reference counting frees them as before. The collector is turned on
   again before the result goes back, and it stays off if something else had already turned it off.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from ansible import constants as C
from ansible.module_utils import ansible_release
from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.plugins.loader import module_utils_loader

from ansible_collections.cnfs.netlab.plugins.plugin_utils import _payload

_PLUGINS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MODULE = os.path.join(_PLUGINS, "modules", "node.py")
_MODULE_UTILS = os.path.join(_PLUGINS, "module_utils")
# The start of the payload's file name in Ansible's per-run directory: the module's name, then its compression
# and extensions.
_PREFIX = "ansible_collections.cnfs.netlab.plugins.modules.node-"


def _kept_directory() -> str | None:
    root = _payload.cache_root()
    if root is None:
        return None
    try:
        # Where Ansible looks for module_utils (a private API, hence the broad except: no cache rather than a
        # failure).
        paths = module_utils_loader._get_paths(subdirs=False)  # pylint: disable=protected-access
        search = [p for p in paths if os.path.isdir(p)]
        key = _payload.fingerprint(_MODULE, _MODULE_UTILS, ansible_release.__version__, search)
    except Exception:  # pylint: disable=broad-exception-caught
        return None
    return os.path.join(root, key)


class ActionModule(NormalAction):
    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        was_enabled = gc.isenabled()
        gc.disable()
        run_cache = os.path.join(C.DEFAULT_LOCAL_TMP, "ansiballz_cache")
        # Once this run's directory holds the payload (every worker after the first ones), nothing is left to do.
        kept = None if any(_payload.payload_names(run_cache, _PREFIX)) else _kept_directory()
        try:
            _payload.seed(run_cache, _PREFIX, kept)
            return super().run(tmp, task_vars)
        finally:
            _payload.keep(run_cache, _PREFIX, kept)
            if was_enabled:
                gc.enable()
