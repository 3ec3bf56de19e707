# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where an ansible-playbook run spends its time, for benchmarks/run.py (not part of the collection).

Enabled by run.py with ANSIBLE_CALLBACK_PLUGINS=benchmarks/callback_plugins and
ANSIBLE_CALLBACKS_ENABLED=cnfs_bench_profile. Writes one JSON file, the path in CNFS_BENCH_PROFILE:

    {"t0": <time the harness started the process, CNFS_BENCH_T0>,
     "playbook_start": <time ansible began the playbook: imports, config, inventory done>,
     "end": <time of the recap>,
     "tasks": [{"name", "action", "start", "end", "hosts": {host: [start, end, status]}}]}

Times are time.time() seconds. A task's end is its last host's result (a task run on no host has none).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: cnfs_bench_profile
type: aggregate
short_description: Record task and per-host timings of a run as JSON (benchmarks only)
description:
  - Writes the start and end of the playbook, of every task and of every host's result of it to the file
    named by the environment variable C(CNFS_BENCH_PROFILE).
requirements:
  - enable in ansible.cfg or with ANSIBLE_CALLBACKS_ENABLED
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "cnfs_bench_profile"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("CNFS_BENCH_PROFILE")
        t0 = os.environ.get("CNFS_BENCH_T0")
        self._data: dict[str, Any] = {"t0": float(t0) if t0 else None, "playbook_start": None, "tasks": []}
        self._current: dict[str, Any] | None = None
        self._host_start: dict[tuple[str, str], float] = {}

    # ------------------------------------------------------------------ tasks
    def _task_start(self, task: Any) -> None:
        now = time.time()
        self._current = {
            "name": task.get_name(),
            "action": task.action,
            "uuid": task._uuid,
            "start": now,
            "end": None,
            "hosts": {},
        }
        self._data["tasks"].append(self._current)

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._data["playbook_start"] = time.time()

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._task_start(task)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._task_start(task)

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._host_start[(host.get_name(), task._uuid)] = time.time()

    def _result(self, result: Any, status: str) -> None:
        now = time.time()
        host = result._host.get_name()
        uuid = result._task._uuid
        task = next((t for t in reversed(self._data["tasks"]) if t["uuid"] == uuid), self._current)
        if task is None:
            return
        start = self._host_start.pop((host, uuid), task["start"])
        task["hosts"][host] = [start, now, status]
        task["end"] = now if task["end"] is None else max(task["end"], now)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._result(result, "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result(result, "unreachable")

    # ------------------------------------------------------------------ the end
    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._data["end"] = time.time()
        for task in self._data["tasks"]:
            task.pop("uuid", None)
        if self._path:
            with open(self._path, "w", encoding="utf-8") as handle:
                json.dump(self._data, handle)
