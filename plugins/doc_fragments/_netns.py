# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The shared `netns` option. Its argument spec lives next to it in module_utils/_args.py.
    DOCUMENTATION = r"""
options:
  netns:
    description:
      - The network namespace to act in.
      - A name of a namespace under C(/run/netns) (as created by M(cnfs.netlab.netns) or C(ip netns add)),
        or an absolute path to a namespace file (for example C(/proc/1234/ns/net)).
      - Omit it to act in the network namespace the module runs in (the managed node's own).
      - The namespace must exist; the module never creates it (use M(cnfs.netlab.netns) for that).
    type: str
"""
