"""What the app's info panel shows, computed by the engine: EXIF facts for people and per-channel histograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL.TiffImagePlugin import IFDRational

from denoiser.display import histogram
from denoiser.io import read_image
from denoiser.io.metadata import EXIF_IFD_TAG, exif_facts


def camera_exif(**overrides: object) -> bytes:
    exif = PILImage.Exif()
    exif[271] = "Canon"
    exif[272] = "Canon EOS R5"
    exif[306] = "2024:05:01 10:00:00"
    sub = exif.get_ifd(EXIF_IFD_TAG)
    sub[33434] = IFDRational(1, 250)  # exposure time
    sub[33437] = IFDRational(28, 10)  # f-number
    sub[34855] = 800  # ISO
    sub[37386] = IFDRational(50, 1)  # focal length
    sub[41989] = 80  # 35 mm equivalent
    sub[42036] = "RF50mm F1.8 STM"
    sub[36867] = "2024:05:01 12:34:56"
    for tag, value in overrides.items():
        sub[int(tag.removeprefix("t"))] = value
    return exif.tobytes()


def test_exif_facts_of_a_photo_read_from_a_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "shot.jpg"
    PILImage.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, exif=camera_exif())
    facts = exif_facts(read_image(path).exif)
    assert facts == [("Camera", "Canon EOS R5"), ("Lens", "RF50mm F1.8 STM"), ("ISO", "800"),
                     ("Exposure", "1/250 s"), ("Aperture", "f/2.8"), ("Focal length", "50 mm (80 mm equivalent)"),
                     ("Date", "2024-05-01 12:34:56")]


def test_exif_facts_long_exposures_make_and_model_and_missing_tags() -> None:
    facts = dict(exif_facts(camera_exif(t33434=IFDRational(5, 2), t33437=IFDRational(8, 1))))
    assert facts["Exposure"] == "2.5 s" and facts["Aperture"] == "f/8"
    exif = PILImage.Exif()
    exif[271] = "NIKON CORPORATION"
    exif[272] = "Z 6"
    exif[306] = "2020:01:02 03:04:05"
    assert exif_facts(exif.tobytes()) == [("Camera", "NIKON CORPORATION Z 6"), ("Date", "2020-01-02 03:04:05")]


@pytest.mark.parametrize("raw", [None, b"", b"Exif\x00\x00garbage", b"\xff" * 40])
def test_exif_facts_without_usable_exif_is_empty(raw: bytes | None) -> None:
    assert exif_facts(raw) == []


def test_histogram_counts_each_channel_on_a_strided_copy() -> None:
    pixels = np.zeros((600, 1200, 4), np.uint8)
    pixels[:, :, 0] = 255  # red all at the top
    pixels[:, :600, 1] = 128  # green half mid, half black
    result = histogram(pixels, bins=16, max_side=300)
    assert result.shape == (3, 16) and result.dtype == np.float32  # alpha left out
    assert result[0, 15] == 1.0 and result[0, :15].sum() == 0
    assert result[1, 0] == result[1, 8] == 0.5  # two equal bins, on the scale shared by all channels
    assert result[2, 0] == 1.0
    grey16 = histogram(np.full((10, 10), 65535, np.uint16), bins=4)
    assert grey16.shape == (1, 4) and grey16[0].tolist() == [0, 0, 0, 1]
    floats = histogram(np.full((4, 4, 3), 0.3, np.float32), bins=10)
    assert floats[:, 3].tolist() == [1, 1, 1]
    with pytest.raises(ValueError):
        histogram(np.zeros((4, 4, 2), np.uint8))
