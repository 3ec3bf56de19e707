# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Standard attributes of a module that changes netlink state.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    support: full
    description: Reads the kernel state and reports what would change, without changing it.
  diff_mode:
    support: full
    description: Shows the object before and after, from the same values that decide C(changed).
  idempotent:
    support: full
    description: A second run with the same arguments reports no change.
  action:
    support: full
    description:
      - The collection's action plugin runs the module like any other, with its AnsiballZ payload kept between runs
        on the controller in C(~/.cache/cnfs-netlab/ansiballz) (C($XDG_CACHE_HOME); C(CNFS_NETLAB_PAYLOAD_CACHE=0)
        in the controller's environment turns it off), since Ansible builds it again in every run; and with the
        worker's garbage collector off while Ansible builds it, which halved the build.
      - The payload carries bytecode compiled on the controller beside its sources, which the node would compile
        on every run. Each C(.pyc) is used only while it matches its source; a node whose Python is another minor
        version than the controller's compiles the sources. In tracebacks that code's file names read
        C(<ansiballz>/...).
"""
