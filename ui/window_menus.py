"""The main window's actions, toolbar and menus (File, View, Tools, Help): built once, each action wired to the
window's slot that does the work. The window keeps the returned :class:`WindowActions` and wires nothing else
here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar, QWidget

from ui.torch_parts import NEEDS_PYTORCH, torch_available
from ui.viewer import MODES, ImageViewer
from ui.zoom_readout import ZoomReadout

__all__ = ["MODE_TITLES", "WindowActions", "build_window_actions"]

MODE_TITLES = {"side": "Side by side", "split": "Split", "toggle": "Toggle", "residual": "Residual",
               "noise": "Noise map"}

Shortcut = str | QKeySequence.StandardKey | None


class ActionSlots(Protocol):
    """What the actions call: the main window's slots (and its viewer)."""

    viewer: ImageViewer

    def open_photo_dialog(self) -> None: ...
    def open_folder_dialog(self) -> None: ...
    def save(self) -> None: ...
    def save_as(self) -> None: ...
    def close(self) -> bool: ...
    def denoise(self) -> None: ...
    def cancel(self) -> None: ...
    def step_photo(self, delta: int) -> None: ...
    def open_batch_dialog(self) -> Any: ...
    def open_train_dialog(self) -> Any: ...
    def open_model_manager(self) -> Any: ...
    def choose_reference(self) -> None: ...
    def show_shortcuts(self) -> Any: ...
    def show_log(self) -> None: ...
    def show_about(self) -> None: ...


@dataclass
class WindowActions:
    """The actions and widgets of the toolbar and menus that the window (and its tests) use afterwards."""

    open_action: QAction
    open_folder_action: QAction
    recent_menu: QMenu
    save_action: QAction
    save_as_action: QAction
    denoise_action: QAction
    cancel_action: QAction
    mode_actions: dict[str, QAction]
    fit_action: QAction
    zoom_100_action: QAction
    zoom_readout: ZoomReadout
    next_action: QAction
    previous_action: QAction
    train_action: QAction
    manage_models_action: QAction


def _action_maker(window: QMainWindow) -> Callable[..., QAction]:
    """``action(text, slot, shortcut, where)``: a window-wide action, added to the menus and toolbars in
    ``where``."""

    def action(text: str, slot: Callable[..., Any], shortcut: Shortcut = None,
               where: tuple[QWidget, ...] = ()) -> QAction:
        act = QAction(text, window)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(slot)
        for target in where:
            target.addAction(act)
        window.addAction(act)
        return act

    return action


def _viewer_step_actions(window: QMainWindow, slots: ActionSlots) -> tuple[QAction, QAction]:
    """Next Photo (PgDn, Space) and Previous Photo (PgUp): keys of the viewer only (a list or a text field keeps
    its own PgUp/PgDn/Space), so they are added to the viewer, not to the window."""
    next_action = QAction("Next Photo", window)
    next_action.setShortcuts([QKeySequence(Qt.Key.Key_PageDown), QKeySequence(Qt.Key.Key_Space)])
    next_action.triggered.connect(lambda: slots.step_photo(1))
    previous_action = QAction("Previous Photo", window)
    previous_action.setShortcut(QKeySequence(Qt.Key.Key_PageUp))
    previous_action.triggered.connect(lambda: slots.step_photo(-1))
    for act in (previous_action, next_action):
        act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        slots.viewer.addAction(act)
    return next_action, previous_action


def _disable_torch_only(tools: QMenu, entries: list[tuple[QAction, str]]) -> None:
    """The desktop bundle (no PyTorch): the entries stay, disabled, and say what they need."""
    for act, what in entries:
        act.setEnabled(False)
        act.setText(act.text().removesuffix("...") + " (needs PyTorch)")
        act.setToolTip(f"{what} {NEEDS_PYTORCH}")
        act.setStatusTip(f"{what} {NEEDS_PYTORCH}")
    tools.setToolTipsVisible(True)


def build_window_actions(window: QMainWindow, slots: ActionSlots) -> WindowActions:
    """Build the toolbar and the File, View, Tools and Help menus of ``window``, their actions calling
    ``slots`` (the window itself)."""
    toolbar = QToolBar("Main")
    toolbar.setObjectName("toolbar-main")
    window.addToolBar(toolbar)
    action = _action_maker(window)
    viewer = slots.viewer

    menu = window.menuBar().addMenu("&File")
    open_action = action("Open Photo...", slots.open_photo_dialog, QKeySequence.StandardKey.Open, (menu, toolbar))
    open_folder_action = action("Open Folder...", slots.open_folder_dialog, "Ctrl+Shift+O", (menu, toolbar))
    recent_menu = menu.addMenu("Recent Folders")
    menu.addSeparator()
    save_action = action("Save", slots.save, QKeySequence.StandardKey.Save, (menu,))
    save_as_action = action("Save As...", slots.save_as, "Ctrl+Shift+S", (menu,))
    menu.addSeparator()
    action("Quit", slots.close, QKeySequence.StandardKey.Quit, (menu,))
    toolbar.addSeparator()
    denoise_action = action("Denoise", slots.denoise, "Ctrl+D", (toolbar,))
    cancel_action = action("Cancel", slots.cancel, "Esc")
    toolbar.addSeparator()

    view_menu = window.menuBar().addMenu("&View")
    mode_actions: dict[str, QAction] = {}
    for number, mode in enumerate(MODES, start=1):
        act = action(MODE_TITLES[mode], lambda _=False, m=mode: viewer.set_mode(m), str(number), (view_menu, toolbar))
        act.setCheckable(True)
        mode_actions[mode] = act
    toolbar.addSeparator()
    fit_action = action("Fit", viewer.zoom_to_fit, "Ctrl+0", (view_menu, toolbar))
    fit_action.setToolTip("Zoom to fit the whole photo (Ctrl+0)")
    zoom_100_action = action("1:1", viewer.zoom_100, "Ctrl+1", (view_menu, toolbar))
    zoom_100_action.setToolTip("Zoom to 100 %: one photo pixel per screen pixel (Ctrl+1)")
    zoom_readout = ZoomReadout(viewer)
    toolbar.addWidget(zoom_readout)
    view_menu.addSeparator()
    next_action, previous_action = _viewer_step_actions(window, slots)
    view_menu.addAction(previous_action)
    view_menu.addAction(next_action)

    tools = window.menuBar().addMenu("&Tools")
    action("Batch Denoise...", slots.open_batch_dialog, "Ctrl+B", (tools,))
    train_action = action("Train a Model...", slots.open_train_dialog, "Ctrl+T", (tools,))
    manage_models_action = action("Manage Models...", slots.open_model_manager, "Ctrl+M", (tools,))
    if not torch_available():
        _disable_torch_only(tools, [(train_action, "Training a model"), (manage_models_action, "The model library")])
    tools.addSeparator()
    action("Compare with a Clean Reference...", slots.choose_reference, None, (tools,))

    help_menu = window.menuBar().addMenu("&Help")
    action("Keyboard Shortcuts...", slots.show_shortcuts, QKeySequence.StandardKey.HelpContents, (help_menu,))
    action("Show Log", slots.show_log, None, (help_menu,))
    help_menu.addSeparator()
    action("About Denoiser", slots.show_about, None, (help_menu,))
    return WindowActions(open_action, open_folder_action, recent_menu, save_action, save_as_action, denoise_action,
                         cancel_action, mode_actions, fit_action, zoom_100_action, zoom_readout, next_action,
                         previous_action, train_action, manage_models_action)
