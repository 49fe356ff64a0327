"""Layout facts from the GUI walk: the batch dialog's table has the room, the side panel's buttons stay put
whatever the noise readout says, and a tiny photo's thumbnail sits centred in its cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QFormLayout
from pytestqt.qtbot import QtBot

from denoiser.models import create_model
from denoiser.modelstore import save_to_library
from denoiser.strength import NoiseEstimate, assumed_estimate, grey_estimate
from ui.batch_dialog import BatchDialog
from ui.folder_pane import FolderPane
from ui.panel import SidePanel
from ui.worker import WorkerBridge

TIMEOUT_MS = 20000
ROWS_WANTED = 8
"""Result rows the batch table must show whole at the dialog's default size."""


@pytest.fixture
def dialog(qtbot: QtBot, bridge: WorkerBridge) -> BatchDialog:
    torch.manual_seed(0)
    save_to_library(create_model("unet", {"widths": [4, 8], "blocks": 1}), "tiny")
    dlg = BatchDialog(bridge, ["tiny"], "tiny", devices=["cpu"])
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    return dlg


def settle() -> None:
    """Let pending layout requests run, so geometries are the ones shown."""
    for _ in range(3):
        QApplication.processEvents()


def whole_rows(dlg: BatchDialog) -> int:
    """Table rows shown whole (not cut by the header or the bottom edge)."""
    table = dlg.results_table
    viewport = table.viewport().rect()
    return sum(1 for row in range(table.rowCount())
               if viewport.contains(table.visualItemRect(table.item(row, 0)), proper=False))


def test_before_start_the_table_has_room_for_eight_rows_and_no_empty_bars(dialog: BatchDialog) -> None:
    """The walk found a table about 3 rows tall at the default 760 x 640, under two empty progress bars."""
    settle()
    assert (dialog.width(), dialog.height()) == (760, 640)
    assert not dialog.overall_bar.isVisible() and not dialog.file_bar.isVisible()
    row_height = dialog.results_table.verticalHeader().defaultSectionSize()
    assert dialog.results_table.viewport().height() >= ROWS_WANTED * row_height


def test_after_a_run_eight_result_rows_show_whole_under_the_bars(qtbot: QtBot, dialog: BatchDialog,
                                                                tmp_path: Path) -> None:
    """After a run the first of 3 rows was cut under the header; now 8 rows all show, with the bars."""
    source = tmp_path / "in"
    source.mkdir()
    for index in range(ROWS_WANTED):
        pixels = np.random.default_rng(index).integers(0, 256, (24, 32, 3), dtype=np.uint8)
        PILImage.fromarray(pixels).save(source / f"p{index}.png")
    dialog.input_edit.setText(str(source))
    dialog.output_edit.setText(str(tmp_path / "out"))
    dialog.auto_box.setChecked(False)
    assert dialog.start()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT_MS)
    settle()
    assert dialog.results_table.rowCount() == ROWS_WANTED
    assert dialog.overall_bar.isVisible() and dialog.overall_bar.value() == ROWS_WANTED
    assert whole_rows(dialog) == ROWS_WANTED
    assert dialog.results_table.verticalScrollBar().maximum() == 0  # nothing scrolled out of sight


def test_the_same_format_choice_reads_naturally_and_keeps_its_value(dialog: BatchDialog) -> None:
    """'Same as input (camera RAW: TIFF 16-bit)' read oddly for a folder of PNGs."""
    assert dialog.format_box.itemText(0) == "Same as each photo (RAW gives 16-bit TIFF)"
    assert dialog.format_box.itemData(0) == dialog.format_box.currentData() == "same"  # the value stored


def button_tops(panel: SidePanel) -> tuple[int, int]:
    settle()
    return (panel.denoise_button.mapTo(panel, panel.denoise_button.rect().topLeft()).y(),
            panel.save_button.mapTo(panel, panel.save_button.rect().topLeft()).y())


def test_denoise_and_save_stay_put_whatever_the_noise_readout_says(qtbot: QtBot) -> None:
    """On a grey photo the readout wrapped onto 2 lines and Denoise/Save moved down about 14 px."""
    panel = SidePanel()
    qtbot.addWidget(panel)
    panel.resize(300, 800)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_noise_estimate(NoiseEstimate(np.array([[[3.2, 7.5]]], np.float32), "network"))
    one_line = button_tops(panel)
    panel.set_noise_estimate(grey_estimate(np.full((1, 1), 9.1, np.float32), "pca"))
    two_lines = button_tops(panel)
    grey_text = panel.noise_label.text()
    assert grey_text.startswith("grey 9.1 (the model is given") and grey_text.endswith("(PCA)")
    very_long = "grey 9.1 (the model is given luminance 18.2, colour 11.4) (varies by 5 over the photo) (rough)"
    panel.set_noise_estimate(assumed_estimate(True), very_long)
    three_lines = button_tops(panel)
    assert one_line == two_lines == three_lines
    assert panel.noise_label.text() == very_long  # whole, though shown cut
    assert very_long in panel.noise_label.toolTip()
    form = panel.layout().itemAt(0).layout()
    assert isinstance(form, QFormLayout)
    name = form.labelForField(panel.noise_label)
    assert name.y() == panel.noise_label.y()  # the row's name stays beside the readout's first line


def painted_box(image: QImage, colour: tuple[int, int, int]) -> tuple[float, float]:
    """The centre (x, y) of the pixels of ``colour`` in ``image``."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    pixels = rows[:, : rgb.width() * 3].reshape(rgb.height(), rgb.width(), 3)
    ys, xs = np.nonzero(np.all(np.abs(pixels.astype(int) - colour) <= 10, axis=2))
    assert xs.size, f"no pixels of {colour} painted"
    return (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2


def test_a_tiny_photos_thumbnail_sits_centred_in_its_cell(qtbot: QtBot, bridge: WorkerBridge,
                                                          tmp_path: Path) -> None:
    """A 12 x 8 photo's thumbnail was drawn in the top-right corner of its cell, above the cell's box."""
    red, green = (220, 20, 20), (20, 200, 20)
    PILImage.fromarray(np.full((80, 80, 3), green, np.uint8)).save(tmp_path / "a_big.png")
    PILImage.fromarray(np.full((8, 12, 3), red, np.uint8)).save(tmp_path / "b_tiny.png")
    pane = FolderPane(bridge)
    qtbot.addWidget(pane)
    pane.resize(pane.width_for_columns(2), 400)
    pane.show()
    qtbot.waitExposed(pane)
    pane.open_folder(tmp_path)
    qtbot.waitUntil(lambda: all(pane.thumbnail_loaded(path) for path in pane.paths()), timeout=TIMEOUT_MS)
    settle()
    shot = pane.view.viewport().grab().toImage()
    big_x, big_y = painted_box(shot, green)
    tiny_x, tiny_y = painted_box(shot, red)
    cell = pane.view.visualRect(pane.model.index(1, 0))
    assert abs(tiny_x - cell.center().x()) <= 2  # centred across its cell
    assert abs(tiny_y - big_y) <= 2  # at the height of a full-size thumbnail's middle, above its name
    assert abs(big_x - pane.view.visualRect(pane.model.index(0, 0)).center().x()) <= 2


def test_a_disabled_slider_looks_disabled_in_the_dark_style(qapp) -> None:
    """A grey photo's disabled Colour slider kept the accent-blue groove of an enabled one in the dark style."""
    from PySide6.QtGui import QPalette

    from ui.style import apply_dark_style

    before = qapp.palette()
    try:
        apply_dark_style(qapp)
        palette = qapp.palette()
        highlight = QPalette.ColorRole.Highlight
        assert palette.color(QPalette.ColorGroup.Disabled, highlight) != palette.color(QPalette.ColorGroup.Active,
                                                                                       highlight)
    finally:
        qapp.setPalette(before)
