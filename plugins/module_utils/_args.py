# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs of shared options (documented by the doc fragments of the same name)."""

from __future__ import annotations

from typing import Any

NETNS_ARG: dict[str, Any] = {"netns": {"type": "str"}}

