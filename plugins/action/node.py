# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of cnfs.netlab.node: the module, run exactly like any other (ansible.builtin.normal), with the
worker's garbage collector off while Ansible builds the module's payload, runs it and reads its result.

Why: the first worker of a node task builds the AnsiballZ payload. Ansible parses every file the module imports
into an AST (the collection's module_utils, about 280 KB, and Ansible's own, about 400 KB), and the other hosts'
workers wait for that build. Those AST nodes come in bursts of allocations, so the collector keeps running full
collections over the whole heap the worker inherited from ansible-playbook. Measured outside Ansible, that is
half of the build: 0.43-0.54 s with the collector, 0.21-0.27 s without. In 2-node stage-4 runs the node task
took 0.65-0.69 s instead of 0.70-0.76 s (medians of two series of 6 and 8 runs each).

Safe: a worker is a fork that runs this one task and exits. The ASTs and the module's JSON result hold no
reference cycles, so reference counting frees them as before. The collector is turned on again before the
result goes back, and it stays off if something else had already turned it off.
"""

from __future__ import annotations

import gc
from typing import Any

from ansible.plugins.action.normal import ActionModule as NormalAction


class ActionModule(NormalAction):
    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return super().run(tmp, task_vars)
        finally:
            if was_enabled:
                gc.enable()
