"""The windows the main window opens beside itself: batch dialogs, Train a Model, the model library.

Each is non-modal and kept referenced while it is open (a batch dialog while its batch runs, even closed); the
batch dialogs close with the main window. Training and the model library need PyTorch: without it (the desktop
bundle) the status bar says so and no dialog opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from denoiser.model_loading import DEFAULT_MODEL
from ui.batch_dialog import BatchDialog
from ui.panel import SidePanel
from ui.torch_parts import NEEDS_PYTORCH, model_names, torch_available
from ui.worker import WorkerBridge

if TYPE_CHECKING:  # torch types: the app runs without torch (the desktop bundle)
    from PySide6.QtWidgets import QWidget

    from ui.model_manager import ModelManager
    from ui.train_dialog import TrainDialog

__all__ = ["ToolWindows"]


class ToolHost(Protocol):
    """What the tool windows need of the main window."""

    bridge: WorkerBridge
    panel: SidePanel

    @property
    def model_name(self) -> str | None: ...
    def open_pair(self, source: Path, output: Path) -> None: ...
    def bring_to_front(self) -> None: ...
    def refresh_models(self) -> None: ...
    def model_renamed(self, old: str, new: str) -> None: ...
    def say(self, message: str, error: bool = False) -> None: ...


class ToolWindows:
    """The main window's batch dialogs, training dialog and model library."""

    def __init__(self, host: ToolHost, parent: QWidget) -> None:
        self.host = host
        self.parent = parent
        self.batch_dialogs: list[BatchDialog] = []
        self.train_dialog: TrainDialog | None = None
        self.model_manager: ModelManager | None = None

    def open_batch_dialog(self) -> BatchDialog:
        """Batch-denoise folders with the window's model and strength.

        The dialog is a window of its own, not a child kept above the main one: a result opened from its table
        brings the main window to the front, in front of the dialog.
        """
        names = model_names() or [DEFAULT_MODEL]
        settings = self.host.panel.settings()
        dialog = BatchDialog(self.host.bridge, names, self.host.model_name or DEFAULT_MODEL, None,
                             passes=settings.passes)
        dialog.set_strength(settings.auto_strength, settings.strength, settings.amount, settings.luminance,
                            settings.color)
        dialog.open_pair.connect(self._open_batch_pair)
        # Closed dialogs with no batch left running are let go; a running one stays referenced until it ends.
        self.batch_dialogs = [d for d in self.batch_dialogs if d.isVisible() or d.is_running()] + [dialog]
        dialog.show()
        return dialog

    def _open_batch_pair(self, source: Path, output: Path) -> None:
        """A batch result row was activated: show it in the main window, brought in front of the dialog."""
        self.host.open_pair(source, output)
        self.host.bring_to_front()

    def open_train_dialog(self) -> TrainDialog | None:
        """Train or fine-tune a model; a saved model appears in the chooser. None without torch."""
        if not torch_available():
            self.host.say(f"Training a model {NEEDS_PYTORCH}.", error=True)
            return None
        from ui.train_dialog import TrainDialog  # imports torch

        dialog = TrainDialog(self.host.bridge, self.parent)
        dialog.model_saved.connect(lambda _name: self.host.refresh_models())
        dialog.show()
        self.train_dialog = dialog
        return dialog

    def open_model_manager(self) -> ModelManager | None:
        """The model library: rename, delete, import, export. None without torch."""
        if not torch_available():
            self.host.say(f"The model library {NEEDS_PYTORCH}.", error=True)
            return None
        from ui.model_manager import ModelManager  # imports torch

        dialog = ModelManager(self.host.bridge, self.parent, model_in_use=lambda: self.host.model_name)
        dialog.model_renamed.connect(self.host.model_renamed)
        dialog.models_changed.connect(self.host.refresh_models)
        # An open Train a Model keeps its "Start from" list true to the library (renamed first, then changed).
        dialog.model_renamed.connect(lambda old, new: self._refresh_training((old, new)))
        dialog.models_changed.connect(lambda: self._refresh_training())
        dialog.show()
        self.model_manager = dialog
        return dialog

    def _refresh_training(self, renamed: tuple[str, str] | None = None) -> None:
        if self.train_dialog is not None:
            self.train_dialog.refresh_models(renamed)

    def close_all(self) -> None:
        """The main window closes: so do the batch dialogs (each cancels its batch; what is written stays)."""
        for dialog in self.batch_dialogs:
            dialog.close()
        self.batch_dialogs.clear()
