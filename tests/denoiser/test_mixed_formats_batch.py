"""Issue 15's "done when": one folder mixing camera RAW (a DNG made here), HEIC, float TIFF, 16-bit PNG and a
rotated JPEG goes through ``denoiser denoise`` with auto strength, and every output is right: format, size (upright),
bit depth, EXIF and orientation. The RAW is never written over."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from dng import Camera, mosaic_of, scene_of_patches, write_dng
from PIL import Image as PILImage

from denoiser.batch.manifest import MANIFEST_NAME
from denoiser.cli import main
from denoiser.io import Image, read_image, write_image
from denoiser.io.metadata import exif_facts
from denoiser.modelfile import save_model
from denoiser.models import create_model

pillow_heif = pytest.importorskip("pillow_heif")


def exif_with(make: str, iso: int, orientation: int = 1) -> bytes:
    exif = PILImage.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = make, f"{make} One", orientation
    exif.get_ifd(0x8769)[0x8827] = iso
    return exif.tobytes()


def noisy(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.2, 0.8, width, dtype=np.float32)[None, :, None]
    return np.clip(np.broadcast_to(ramp, (height, width, 3)) + rng.normal(0, 0.05, (height, width, 3)), 0, 1)


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    scene = scene_of_patches(48, 64, [((8, 24, 8, 24), (0.6, 0.2, 0.1))])
    camera = Camera(orientation=6)  # shot in portrait: 64 wide x 48 high stored, 48 x 64 upright
    write_dng(folder / "IMG_0001.DNG", mosaic_of(scene, camera.as_shot_neutral), camera)
    heic = pillow_heif.from_bytes(mode="RGB", size=(40, 24),
                                  data=(noisy(24, 40, 1) * 255).astype(np.uint8).tobytes())
    heic.save(str(folder / "phone.heic"), quality=90, exif=exif_with("Phone", 800))
    tifffile.imwrite(folder / "scan.tif", (noisy(20, 30, 2) * 4000 - 100).astype(np.float32), photometric="rgb")
    write_image(folder / "film.png", Image((noisy(16, 24, 3) * 65535).astype(np.uint16)))
    write_image(folder / "camera.jpg", Image((noisy(30, 20, 4) * 255).astype(np.uint8), exif=exif_with("Cam", 3200,
                                                                                                        6)))
    return folder


def test_a_folder_of_every_kind_of_photo_goes_through_the_batch(tmp_path: Path, mixed_folder: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    model = save_model(create_model("unet", {"widths": [4, 8], "blocks": 1}), tmp_path / "tiny.safetensors")
    raw_bytes = (mixed_folder / "IMG_0001.DNG").read_bytes()
    out = tmp_path / "out"
    assert main(["denoise", str(mixed_folder), "-o", str(out), "--model", str(model)]) == 0, capsys.readouterr()

    results = {p.name: read_image(p) for p in out.iterdir() if p.name != MANIFEST_NAME and not p.name.startswith(".")}
    assert sorted(results) == ["IMG_0001_denoised.tif", "camera_denoised.jpg", "film_denoised.png",
                               "phone_denoised.heic", "scan_denoised.tif"]
    raw = results["IMG_0001_denoised.tif"]  # developed upright, 16 bits, the camera's EXIF
    assert (raw.format, raw.bit_depth, raw.width, raw.height, raw.channels) == ("TIFF", 16, 48, 64, 3)
    facts = dict(exif_facts(raw.exif))
    assert "Testmaker" in facts.get("Camera", "") and "1600" in facts.get("ISO", "")
    assert (mixed_folder / "IMG_0001.DNG").read_bytes() == raw_bytes  # the RAW is never touched

    phone = results["phone_denoised.heic"]
    assert (phone.format, phone.bit_depth, phone.width, phone.height) == ("HEIF", 8, 40, 24)
    assert "800" in dict(exif_facts(phone.exif)).get("ISO", "")

    scan = results["scan_denoised.tif"]  # float in, float out, on its own scale
    assert (scan.format, scan.bit_depth, scan.width, scan.height, scan.channels) == ("TIFF", 32, 30, 20, 3)
    assert scan.pixels.max() > 1000  # not clipped to 0-1 (a tiny untrained model: no finer check)

    film = results["film_denoised.png"]
    assert (film.bit_depth, film.width, film.height) == (16, 24, 16)

    jpeg = results["camera_denoised.jpg"]  # turned upright once, orientation reset, EXIF kept
    assert (jpeg.bit_depth, jpeg.width, jpeg.height) == (8, 30, 20)
    assert PILImage.open(out / "camera_denoised.jpg").getexif().get(0x0112, 1) == 1
    assert "3200" in dict(exif_facts(jpeg.exif)).get("ISO", "")

    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert {entry["status"] for entry in manifest["files"].values()} == {"done"}
