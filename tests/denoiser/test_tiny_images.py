"""Auto strength on photos too small (or too thin) for the usual noise reading: 1 x 1, strips, icons.

Every size denoises with auto: a photo too small for 7 x 7 patches is read in smaller ones (a "rough" reading),
one too small for any is given a typical camera photo's noise (an "assumed" one), and a finding says which. The
names added for this (``workable_patch``, ``ASSUMED_LEVELS``, ``estimate_findings``...) are imported inside the
tests, so that on the code before them each test fails on its own assertion rather than on an import.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import denoiser.estimator as estimator_module
from denoiser.batch import DenoiseSettings
from denoiser.batch.single import denoise_image
from denoiser.cli import main
from denoiser.io import Image
from denoiser.modelfile import save_model
from denoiser.models import create_model
from denoiser.strength import Strength, estimate_noise_map, levels_for

TINY_SHAPES = [(1, 1), (128, 3), (3, 128), (2, 2000), (6, 6)]
"""(height, width) of the photos the issue named: none of them has room for the usual 7 x 7 noise reading."""

ESTIMATE_CODES = {"strength_assumed", "strength_rough"}


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("unet", {"widths": [4, 8], "blocks": 1})


@pytest.fixture(autouse=True)
def no_noise_map_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PCA reading and the assumed level are what is tested, with or without the bundled network (none of
    these photos reaches its smallest side of 16): leaving it out keeps the tests independent of the install."""
    monkeypatch.setattr(estimator_module, "bundled_estimator", lambda: None)


def noisy_photo(shape: tuple[int, int], channels: int, dtype: type, sigma: float = 10.0,
                seed: int = 0) -> np.ndarray:
    """A smooth gradient with white noise of ``sigma`` (8-bit units), H x W x C, as uint8 or uint16."""
    height, width = shape
    y, x = np.mgrid[0:height, 0:width]
    ramps = [60 + 0.05 * x + 0.3 * y, 90 + 0.04 * x + 0.2 * y, 120 + 0.03 * x + 0.1 * y][:channels]
    clean = np.stack(ramps, axis=2) if channels == 3 else np.stack(ramps[:1], axis=2)
    noisy = np.clip(clean + np.random.default_rng(seed).normal(0.0, sigma, clean.shape), 0, 255)
    if dtype == np.uint16:
        return np.round(noisy * 257).astype(np.uint16)
    return np.round(noisy).astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16], ids=["8bit", "16bit"])
@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "rgb"])
@pytest.mark.parametrize("shape", TINY_SHAPES, ids=[f"{h}x{w}" for h, w in TINY_SHAPES])
def test_auto_strength_denoises_every_tiny_photo_and_says_how_it_got_its_strength(
        tiny_model: torch.nn.Module, shape: tuple[int, int], channels: int, dtype: type) -> None:
    pixels = noisy_photo(shape, channels, dtype)
    result = denoise_image(Image(pixels), tiny_model, DenoiseSettings(device="cpu"))
    assert result.image.pixels.shape == pixels.shape and result.image.pixels.dtype == pixels.dtype
    assert np.isfinite(result.sigma) and result.sigma > 0  # denoised at some strength, not silently left alone
    (finding,) = [f for f in result.findings if f.code in ESTIMATE_CODES]
    height, width = shape
    assert f"({width} x {height} pixels)" in finding.message and "too small" in finding.message and finding.advice
    # Which of the two: a reading in smaller patches where the photo holds enough of them, else an assumption.
    assumed = shape == (1, 1) or (shape == (6, 6) and channels == 1)
    assert finding.code == ("strength_assumed" if assumed else "strength_rough")


@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "rgb"])
def test_a_photo_too_small_to_read_gets_a_typical_camera_photos_noise_and_the_finding_names_it(
        tiny_model: torch.nn.Module, channels: int) -> None:
    from denoiser.strength import ASSUMED_GREY, ASSUMED_LEVELS, GREY_MAP

    pixels = noisy_photo((1, 1), channels, np.uint8)
    estimate = estimate_noise_map(pixels)
    assert estimate.method == "assumed" and not estimate.measured
    expected = np.array(GREY_MAP) * ASSUMED_GREY if channels == 1 else np.array(ASSUMED_LEVELS)
    np.testing.assert_allclose(estimate.levels[0, 0], expected, rtol=1e-6)
    assert "assumed" in estimate.summary()
    result = denoise_image(Image(pixels), tiny_model, DenoiseSettings(device="cpu"))
    (finding,) = [f for f in result.findings if f.code == "strength_assumed"]
    assert estimate.levels_text() in finding.message  # says which level was used
    # With an amount, the finding also says what the model was given; a fixed strength assumes nothing.
    halved = denoise_image(Image(pixels), tiny_model, DenoiseSettings(amount=0.5, device="cpu"))
    (finding,) = [f for f in halved.findings if f.code == "strength_assumed"]
    assert f"luminance {0.5 * expected[0]:.1f}, colour {0.5 * expected[1]:.1f}" in finding.message
    fixed = denoise_image(Image(pixels), tiny_model, DenoiseSettings(strength=10.0, device="cpu"))
    assert not [f for f in fixed.findings if f.code in ESTIMATE_CODES]


@pytest.mark.parametrize(("shape", "channels"), [((2, 2000), 3), ((3, 128), 3), ((128, 3), 3), ((6, 6), 3),
                                                 ((2, 2000), 1), ((3, 400), 1)])
def test_a_thin_or_tiny_photo_is_read_in_smaller_patches_close_to_its_true_noise(shape: tuple[int, int],
                                                                                 channels: int) -> None:
    # Before, such photos read 0 (no noise) and were silently left undenoised by auto.
    readings = [estimate_noise_map(noisy_photo(shape, channels, np.uint8, sigma=12.0, seed=seed))
                for seed in range(5)]
    level = float(np.median([r.grey if channels == 1 else r.luminance for r in readings]))
    low, high = (9.0, 16.0) if shape != (6, 6) else (6.0, 16.0)  # 36 pixels read low more often
    assert low < level < high
    assert all(r.method == "pca" and r.rough and "rough" in r.summary() for r in readings)


def test_which_patch_each_size_is_read_in() -> None:
    from denoiser.noise_estimation import workable_patch

    # Photos with room for enough 7 x 7 patches keep the usual reading (and so the estimate they always had).
    assert workable_patch(24, 24, 3) == workable_patch(16, 16, 1) == workable_patch(8, 400, 3) == (7, 7)
    assert workable_patch(2, 2000, 3) == workable_patch(2, 2000, 1) == (2, 7)
    assert workable_patch(6, 6, 3) == (2, 2)
    assert workable_patch(128, 3, 3) is not None and workable_patch(3, 128, 3) is not None
    for too_small in [(1, 1, 3), (1, 1, 1), (6, 6, 1), (1, 2000, 1), (2, 2, 3)]:
        assert workable_patch(*too_small) is None, too_small


def test_a_normal_photo_keeps_its_usual_reading_and_gets_no_estimate_finding(tiny_model: torch.nn.Module) -> None:
    from denoiser.findings import estimate_findings
    from denoiser.noise_estimation import estimate_noise

    pixels = noisy_photo((40, 48), 3, np.uint8, sigma=15.0)
    estimate = estimate_noise_map(pixels)
    assert estimate.method == "pca" and estimate.patch is None and estimate.measured
    assert estimate.luminance == pytest.approx(estimate_noise(pixels))
    assert estimate_findings(estimate, pixels.shape[:2], Strength()) == []
    assert "rough" not in estimate.summary() and "assumed" not in estimate.summary()
    levels, used = levels_for(pixels, Strength())
    assert used is not None and levels[0, 0, 0] == pytest.approx(estimate.luminance)


def write_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(path)
    return path


def test_cli_denoise_with_auto_strength_on_a_folder_of_tiny_photos(tmp_path: Path, tiny_model: torch.nn.Module,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    model_file = save_model(tiny_model, tmp_path / "models" / "tiny.safetensors")
    src, out = tmp_path / "tiny", tmp_path / "out"
    write_png(src / "dot.png", noisy_photo((1, 1), 3, np.uint8))
    write_png(src / "line.png", noisy_photo((2, 200), 3, np.uint8))
    write_png(src / "icon.png", noisy_photo((6, 6), 1, np.uint8))
    status = main(["denoise", str(src), "-o", str(out), "--model", str(model_file), "--device", "cpu"])
    captured = capsys.readouterr()
    text = captured.out + captured.err  # results on stdout, warnings and the summary on stderr
    assert status == 0, text
    assert "3 denoised, 0 failed" in text
    for name, size in (("dot", (1, 1)), ("line", (200, 2)), ("icon", (6, 6))):
        with PILImage.open(out / f"{name}_denoised.png") as written:
            assert written.size == size
    warnings = [line for line in text.splitlines() if line.strip().startswith("warning:")]
    assert len(warnings) == 3 and all("too small" in line for line in warnings), text
    manifest = json.loads((out / "denoiser-manifest.json").read_text(encoding="utf-8"))
    codes = {Path(source).name: [f["code"] for f in entry["findings"]] for source, entry in manifest["files"].items()}
    assert "strength_assumed" in codes["dot.png"] and "strength_assumed" in codes["icon.png"]
    assert "strength_rough" in codes["line.png"]


def test_cli_estimate_noise_on_a_tiny_photo_says_it_is_assumed(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    dot = write_png(tmp_path / "dot.png", noisy_photo((1, 1), 3, np.uint8))
    strip = write_png(tmp_path / "strip.png", noisy_photo((3, 128), 3, np.uint8, sigma=12.0))
    assert main(["estimate-noise", str(dot), str(strip)]) == 0
    dot_line, strip_line = capsys.readouterr().out.splitlines()
    assert "assumed" in dot_line and "luminance 4.0, colour 2.0" in dot_line
    assert not re.search(r"\bnan\b", dot_line)  # the PCA check it used to print as "nan"
    found = re.search(r"luminance ([\d.]+), colour ([\d.]+)", strip_line)
    assert found and 9 < float(found.group(1)) < 16 and "rough" in strip_line
