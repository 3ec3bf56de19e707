# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ansible_child``: a script run in a fresh interpreter with Ansible's own payload builder loaded (the plugin
loader changes sys.meta_path, so not in the test's own process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[4]

# What every script starts with: its arguments in `argv`, and build_payload(module, local_tmp), the AnsiballZ
# wrapper Ansible builds for cnfs.netlab.<module> with DEFAULT_LOCAL_TMP there (options {"a": 1}).
PREAMBLE = """
import json, os, subprocess, sys
argv = sys.argv[1:]
sys.argv = ["ansible"]
from ansible import constants as C
from ansible.executor import module_common
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, module_loader
from ansible.template import Templar

init_plugin_loader([os.environ["COLLECTIONS"]])


def build_payload(module, local_tmp):
    C.DEFAULT_LOCAL_TMP = local_tmp
    name = "cnfs.netlab." + module
    path = module_loader.find_plugin_with_context(name).plugin_resolved_path
    built = module_common.modify_module(module_name=name, module_path=path, module_args={"a": 1},
                                        templar=Templar(loader=DataLoader()),
                                        task_vars={"ansible_python_interpreter": sys.executable},
                                        module_compression="ZIP_DEFLATED")
    return built.b_module_data
"""


@pytest.fixture
def ansible_child() -> Callable[..., Any]:
    """Run PREAMBLE + script with these arguments (and environment additions); the JSON of its last line."""

    def run(script: str, *args: str, env: dict[str, str] | None = None) -> Any:
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        environment["COLLECTIONS"] = str(REPO / ".collections")
        environment.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-c", PREAMBLE + script, *args],
            capture_output=True,
            text=True,
            env=environment,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run
