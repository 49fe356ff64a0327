"""The Help menu's contents: the keyboard shortcuts (read from the window's actual actions, so the list stays
true), About (versions and the device in use) and opening the log file."""

from __future__ import annotations

import platform
from collections.abc import Iterable, Sequence
from pathlib import Path

import PySide6
from PySide6.QtCore import QUrl, qVersion
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

import denoiser
from denoiser.io.formats import FORMAT_NAMES, unavailable_formats
from ui.logging_setup import log_file
from ui.viewer import VIEWER_KEYS, ImageViewer

__all__ = ["HelpMenuSlots", "ShortcutsDialog", "about_text", "open_log", "shortcut_rows", "versions"]


def _action_name(action: QAction) -> str:
    """The action's text as a person reads it: no ``&`` mnemonics, no trailing dots."""
    return action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip(".").strip()


def shortcut_rows(actions: Iterable[QAction]) -> list[tuple[str, str]]:
    """(what, keys) for every action with a keyboard shortcut, in the order given, each action once; the keys
    as the platform writes them (``Ctrl+O``; several joined with ``, ``)."""
    rows: list[tuple[str, str]] = []
    seen: set[int] = set()
    for action in actions:
        if id(action) in seen:
            continue
        seen.add(id(action))
        keys = [shortcut.toString(QKeySequence.SequenceFormat.NativeText) for shortcut in action.shortcuts()
                if not shortcut.isEmpty()]
        if keys and action.text():
            rows.append((_action_name(action), ", ".join(keys)))
    return rows


class ShortcutsDialog(QDialog):
    """A two-column table of what each key does: the window's actions, then the viewer's own keys."""

    def __init__(self, rows: Sequence[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.rows = list(rows)
        self.table = QTableWidget(len(self.rows), 2)
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # What is done wraps into the room left; the keys column is as wide as its longest entry, never elided.
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setWordWrap(True)
        for row, (what, keys) in enumerate(self.rows):
            self.table.setItem(row, 0, QTableWidgetItem(what))
            self.table.setItem(row, 1, QTableWidgetItem(keys))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(640, 560)


def versions() -> dict[str, str]:
    """The versions About reports: the app, PySide6 and the Qt it runs on, PyTorch, Python."""
    try:
        import torch

        torch_version = str(torch.__version__)
    except ImportError:  # the desktop bundle leaves torch out
        torch_version = "not installed (models run through ONNX Runtime)"
    return {"Denoiser": denoiser.__version__, "PySide6": PySide6.__version__, "Qt": qVersion(),
            "PyTorch": torch_version, "Python": platform.python_version()}


def formats_text() -> str:
    """The formats this install reads, and those it cannot with what to install for them."""
    text = f"Reads: {FORMAT_NAMES}."
    for info in unavailable_formats():
        text += f"\n{info.label} files cannot be opened: {info.missing()}."
    return text


def about_text(device: str) -> str:
    """About's text: what the app is, the versions, the device denoising runs on, and the formats it reads."""
    lines = [f"{name} {version}" for name, version in versions().items()]
    return ("Denoiser cleans noisy photos with denoising autoencoders.\n\n" + "\n".join(lines)
            + f"\nDevice in use: {device}\n\n{formats_text()}")


def open_log(file: Path) -> bool:
    """Open the log ``file`` with the desktop's viewer, or its folder while the file does not exist yet (the folder
    is made if need be). False when the desktop could not open it."""
    target = Path(file)
    if not target.is_file():
        target = target.parent
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(target)))


class HelpMenuSlots:
    """The Help menu's slots, for the main window to inherit: it has what they use (QWidget's ``actions()``, the
    ``viewer``, ``_device_text()`` and ``say()``). No stand-ins for those here: ahead of QMainWindow in the window's
    bases, a stand-in would hide Qt's own."""

    viewer: ImageViewer

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """Every keyboard shortcut the window has as (what, keys), read from its actions (the window's and the
        viewer's), then the keys and gestures the viewer handles itself (``VIEWER_KEYS`` is (keys, what))."""
        viewer_rows = [(what, keys) for keys, what in VIEWER_KEYS]
        return shortcut_rows([*self.actions(), *self.viewer.actions()]) + viewer_rows

    def show_shortcuts(self) -> ShortcutsDialog:
        """Help > Keyboard Shortcuts: a dialog listing them (non-modal)."""
        dialog = ShortcutsDialog(self.shortcut_rows(), self)  # type: ignore[arg-type] - the window is a QWidget
        dialog.show()
        self.shortcuts_dialog = dialog
        return dialog

    def about_text(self) -> str:
        """Help > About's text: versions and the device in use."""
        return about_text(self._device_text())

    def show_about(self) -> None:
        """Help > About Denoiser."""
        QMessageBox.about(self, "About Denoiser", self.about_text())  # type: ignore[arg-type] - a QWidget

    def show_log(self) -> None:
        """Help > Show Log: the log file (or its folder, until something was logged) in the desktop's viewer."""
        path = log_file()
        if not open_log(path):
            self.say(f"Could not open the log; it is {path}", error=True)
