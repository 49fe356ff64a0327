"""A check before Qt starts: on Linux under X11, Qt's xcb platform plugin needs system libraries that a fresh
desktop install may lack (``libxcb-cursor0`` above all, since Qt 6.5). Without them Qt aborts the process with
"Could not load the Qt platform plugin xcb"; this module finds them missing first and says which packages to
install. No Qt here: it runs before Qt loads its plugins.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable, Mapping

__all__ = ["SKIP_ENV", "XCB_LIBRARIES", "XCB_PACKAGES", "missing_xcb_libraries", "xcb_advice"]

XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0",
    "xkbcommon-x11": "libxkbcommon-x11-0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-image": "libxcb-image0",
    "xcb-render-util": "libxcb-render-util0",
    "xcb-xinerama": "libxcb-xinerama0",
    "xcb-shape": "libxcb-shape0",
}
"""The libraries Qt's xcb plugin loads (as ``ctypes.util.find_library`` names them) and their Debian/Ubuntu
packages."""
XCB_PACKAGES = tuple(XCB_LIBRARIES.values())
SKIP_ENV = "DENOISER_SKIP_XCB_CHECK"
"""Set to 1 to start Qt without this check (libraries in a place ``find_library`` does not search)."""


def missing_xcb_libraries(platform: str | None = None, env: Mapping[str, str] | None = None,
                          find_library: Callable[[str], str | None] = ctypes.util.find_library) -> list[str]:
    """The xcb libraries Qt will need but cannot find, as package names; empty when Qt will not use xcb (not
    Linux, another ``QT_QPA_PLATFORM``, no ``DISPLAY``, a Wayland session) or when the check is switched off."""
    platform = sys.platform if platform is None else platform
    env = os.environ if env is None else env
    if not platform.startswith("linux") or env.get(SKIP_ENV) or getattr(sys, "frozen", False):
        return []  # the desktop bundle (frozen) carries these libraries itself
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen and not chosen.startswith("xcb"):
        return []
    if not env.get("DISPLAY") or (not chosen and env.get("WAYLAND_DISPLAY")):
        return []
    return [package for library, package in XCB_LIBRARIES.items() if not find_library(library)]


def xcb_advice(missing: list[str]) -> str:
    """What ``denoiser-gui`` prints instead of Qt's abort: the missing packages and the command to install them."""
    return (
        "denoiser-gui: the app cannot open a window: Qt's X11 (xcb) platform plugin needs system libraries that "
        f"are not installed: {', '.join(missing)}.\n"
        "On Debian or Ubuntu install them with:\n\n"
        f"    sudo apt-get install {' '.join(XCB_PACKAGES)}\n\n"
        "(other distributions name them xcb-util-cursor, libxkbcommon-x11, xcb-util-wm, xcb-util-keysyms, "
        "xcb-util-image, xcb-util-renderutil).\n"
        f"If they are installed somewhere this check does not look, start with {SKIP_ENV}=1."
    )
