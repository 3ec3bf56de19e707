# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each resource module's argument spec (in _args.py) matches the options its DOCUMENTATION promises."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import yaml

from ansible_collections.cnfs.netlab.plugins.module_utils import _args

MODULES = {
    "address": "ADDRESS_SPEC",
    "bridge": "BRIDGE_SPEC",
    "link": "LINK_SPEC",
    "netns": "NETNS_SPEC",
    "overlay": "OVERLAY_SPEC",
    "route": "ROUTE_SPEC",
    "sysctl": "SYSCTL_SPEC",
    "veth": "VETH_SPEC",
}


def documented_options(module: str) -> dict[str, Any]:
    doc = yaml.safe_load(
        importlib.import_module(f"ansible_collections.cnfs.netlab.plugins.modules.{module}").DOCUMENTATION
    )
    options = dict(doc.get("options") or {})
    for fragment in doc.get("extends_documentation_fragment") or []:
        name = fragment.split(".")[-1]
        frag = importlib.import_module(f"ansible_collections.cnfs.netlab.plugins.doc_fragments.{name}")
        options.update(yaml.safe_load(frag.ModuleDocFragment.DOCUMENTATION).get("options") or {})
    return options


def shape(options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What must agree between a spec and its documentation, with Ansible's defaults filled in."""
    return {
        name: {
            "type": opt.get("type", "str"),
            "required": bool(opt.get("required", False)),
            "default": opt.get("default"),
            "choices": opt.get("choices"),
            "elements": opt.get("elements"),
            # A spec nests under "options", its documentation under "suboptions".
            "options": shape(sub) if (sub := opt.get("options") or opt.get("suboptions")) else None,
        }
        for name, opt in options.items()
    }


@pytest.mark.parametrize("module", sorted(MODULES))
def test_argument_spec_matches_documentation(module):
    spec = getattr(_args, MODULES[module])["argument_spec"]
    assert shape(spec) == shape(documented_options(module))


def test_the_comparison_notices_a_difference():
    spec = {**_args.ROUTE_SPEC["argument_spec"], "table": {"type": "str", "default": "local"}}
    assert shape(spec) != shape(documented_options("route"))
