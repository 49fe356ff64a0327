"""Formats in the app (issue 15): the Open and Save As filters, About, the info panel, float results on screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from denoiser.io import Image, write_image
from ui.file_filters import LOSSY_FORMATS, open_filters, save_filters
from ui.help import formats_text
from ui.info_panel import InfoPanel, depth_text, format_text


def test_open_offers_raw_heic_and_float_tiff_in_both_letter_cases() -> None:
    filters = open_filters()
    assert filters[0].startswith("Images (") and "*.CR2" in filters[0] and "*.heic" in filters[0]
    raw = next(f for f in filters if f.startswith("Camera RAW"))
    assert "*.nef" in raw and "*.NEF" in raw and "*.dng" in raw
    assert any(f.startswith("HEIC/HEIF") for f in filters)
    assert all(f[0].isupper() for f in filters)  # a filter's label starts with a capital, as dialogs' do


def test_save_as_offers_what_is_written_never_raw() -> None:
    filters = save_filters()
    assert "RAW" not in filters and "HEIF" in filters and "TIFF" in filters
    assert "*.jpg" in filters["JPEG"] and "*.dng" not in " ".join(filters.values())
    assert {"HEIF", "AVIF"} <= set(LOSSY_FORMATS)


def test_about_lists_the_formats_read() -> None:
    assert "camera RAW" in formats_text() and "HEIC/HEIF" in formats_text()


def test_the_info_panel_names_formats_as_people_write_them(qapp: object) -> None:
    assert (format_text("RAW"), format_text("HEIF"), format_text("WEBP")) == ("camera RAW", "HEIC/HEIF", "WebP")
    assert format_text("XCF") == "XCF"  # not in the table: its name as it is
    panel = InfoPanel()
    panel.set_photo(Path("shot.nef"), 60, 40, 16, 3, "RAW", [], None)
    assert dict(panel.rows())["Format"] == "camera RAW"


def test_a_float_photo_reads_as_float_in_the_info_panel() -> None:
    assert depth_text(32, 3) == "32-bit float RGB" and depth_text(16, 1) == "16-bit grey"


def test_a_float_batch_result_is_shown_on_its_photos_scale(tmp_path: Path, qapp: object) -> None:
    from ui.photo_jobs import read_pair

    photo = np.linspace(0.0, 4000.0, 32 * 32 * 3, dtype=np.float32).reshape(32, 32, 3)
    source = write_image(tmp_path / "scan.tif", Image(photo))
    output = write_image(tmp_path / "scan_denoised.tif", Image(photo * np.float32(0.5)))  # peaks lowered
    opened, outcome = read_pair(source, output)
    np.testing.assert_allclose(outcome.denoised, photo * 0.5 / 4000.0, atol=1e-6)  # not stretched to its own peak
