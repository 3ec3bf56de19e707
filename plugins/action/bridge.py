# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of cnfs.netlab.bridge: the module, its payload kept and compiled (plugin_utils/_action.py)."""

from __future__ import annotations

from ansible_collections.cnfs.netlab.plugins.plugin_utils._action import ModuleAction


class ActionModule(ModuleAction):
    pass
