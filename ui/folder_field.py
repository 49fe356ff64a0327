"""A folder path field with a Browse... button beside it, as the training and batch dialogs ask for their folders."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QWidget


def folder_field(edit: QLineEdit, title: str, chosen: Callable[[str], None] | None = None) -> QWidget:
    """``edit`` with a Browse... button that puts the chosen folder into it; ``title`` is the folder chooser's;
    ``chosen`` is told the folder afterwards."""
    browse = QPushButton("Browse...")

    def choose() -> None:
        folder = QFileDialog.getExistingDirectory(edit.window(), title, edit.text())
        if folder:
            edit.setText(folder)
            if chosen is not None:
                chosen(folder)

    browse.clicked.connect(choose)
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    layout.addWidget(browse)
    return row
