"""Guard against a Qt binding build that corrupts Python's reference counts (PySide6 6.12.0 on CPython 3.11)."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot


def test_void_qt_calls_keep_none_alive(qtbot: QtBot) -> None:
    app = QApplication.instance()
    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for i in range(500):
        app.processEvents()
        label.setText(str(i))
    # Other code may create or drop a few references meanwhile; a broken build loses one per call (1000).
    assert abs(sys.getrefcount(None) - before) < 100
