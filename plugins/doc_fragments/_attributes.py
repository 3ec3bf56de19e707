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
"""
