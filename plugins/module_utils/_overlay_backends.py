# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which class builds an overlay: :func:`select_backend`, used by the ``overlay`` module and the node apply.

A file of its own because it imports every backend, and every backend imports the base (``_overlay.py``).
"""

from __future__ import annotations

from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay import OverlayResource
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay_udp import UdpOverlay
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay_vxlan import VxlanOverlay
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay_wireguard import WireguardOverlay

BACKEND_CLASSES: dict[str, type[OverlayResource]] = {
    "udp": UdpOverlay,
    "vxlan": VxlanOverlay,
    "wireguard": WireguardOverlay,
}


def backend_class(spec: dict[str, Any]) -> type[OverlayResource]:
    """The class of ``spec``'s ``backend`` (default udp)."""
    backend = spec.get("backend") or "udp"
    if backend not in BACKEND_CLASSES:
        raise NetlabError(f"overlay: backend {backend!r} is unknown: use one of {', '.join(BACKEND_CLASSES)}")
    return BACKEND_CLASSES[backend]


def select_backend(spec: dict[str, Any]) -> OverlayResource:
    """The overlay resource of ``spec`` (the ``overlay`` module's parameters), by its ``backend`` (default udp)."""
    return backend_class(spec)(spec)


def normalise(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` validated and normalised by its backend (pure)."""
    return backend_class(spec).normalise(spec)
