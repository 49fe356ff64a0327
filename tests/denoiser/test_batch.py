"""Batch denoising: output naming, collisions, per-file failures, cancel, nothing overwritten."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.batch import DenoiseSettings, denoise_files, plan_outputs
from denoiser.errors import Cancelled
from denoiser.inference import TileSettings
from denoiser.io import read_image
from denoiser.models import create_model


@pytest.fixture
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("unet", {"widths": [4, 8], "blocks": 1})


def write_photo(path: Path, seed: int, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels, mode).save(path)
    return path


def test_plan_keeps_tree_and_never_names_an_input(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_photo(src / "a.png", 1)
    write_photo(src / "sub" / "b.png", 2)
    # An input already named like an output must not be chosen as a target.
    write_photo(src / "a_denoised.png", 3)
    plan = plan_outputs([src], src, DenoiseSettings())
    outputs = [out for _, out in plan]
    inputs = {p.resolve() for p, _ in plan}
    assert len(plan) == 3
    assert not inputs & {o.resolve() for o in outputs}
    assert len(set(outputs)) == 3
    assert (src / "sub" / "b_denoised.png") in outputs
    assert (src / "a_denoised-2.png") in outputs


def test_same_stem_from_two_folders_gets_distinct_outputs(tmp_path: Path) -> None:
    one, two = write_photo(tmp_path / "x" / "p.png", 1), write_photo(tmp_path / "y" / "p.png", 2)
    plan = plan_outputs([one, two], tmp_path / "out", DenoiseSettings())
    assert [o.name for _, o in plan] == ["p_denoised.png", "p_denoised-2.png"]


def test_bad_file_is_reported_and_the_rest_are_written(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src = tmp_path / "in"
    good = write_photo(src / "good.png", 1)
    write_photo(src / "alpha.png", 2, mode="RGBA")
    (src / "broken.png").write_bytes(b"this is not a PNG at all")
    before = {p: p.read_bytes() for p in src.iterdir()}
    settings = DenoiseSettings(strength=20, tiles=TileSettings(tile=32))
    results = list(denoise_files(plan_outputs([src], tmp_path / "out", settings), tiny_model, settings))
    status = {r.source.name: r for r in results}
    assert status["broken.png"].status == "failed"
    assert "broken.png" in status["broken.png"].message
    assert status["good.png"].status == status["alpha.png"].status == "done"
    assert read_image(status["good.png"].output).pixels.shape == read_image(good).pixels.shape
    alpha_in, alpha_out = read_image(src / "alpha.png"), read_image(status["alpha.png"].output)
    np.testing.assert_array_equal(alpha_in.alpha(), alpha_out.alpha())
    assert {p: p.read_bytes() for p in src.iterdir()} == before  # inputs untouched


def test_auto_strength_is_recorded(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src = write_photo(tmp_path / "a.png", 4, size=(48, 48))
    settings = DenoiseSettings(strength=None, tiles=TileSettings(tile=32))
    (result,) = denoise_files(plan_outputs([src], tmp_path / "out", settings), tiny_model, settings)
    assert result.status == "done" and result.sigma is not None and 0 < result.sigma <= 75


def test_cancel_stops_the_batch_and_leaves_no_partial_file(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src = tmp_path / "in"
    for i in range(3):
        write_photo(src / f"{i}.png", i, size=(96, 96))
    out = tmp_path / "out"
    settings = DenoiseSettings(strength=10, tiles=TileSettings(tile=32, overlap=8))
    results: list = []
    calls_in_second_file = {"n": 0}

    def stop_during_second_file() -> bool:
        if len(results) == 1:
            calls_in_second_file["n"] += 1
        return calls_in_second_file["n"] > 2  # a few tile batches into the second file


    with pytest.raises(Cancelled):
        for result in denoise_files(plan_outputs([src], out, settings), tiny_model, settings,
                                    should_stop=stop_during_second_file):
            results.append(result)
    assert [r.status for r in results] == ["done"]
    written = sorted(p.name for p in out.rglob("*"))
    assert written == ["0_denoised.png"]  # nothing half-written, no temporary leftovers


def test_unforeseen_error_in_one_file_does_not_stop_the_batch(tmp_path: Path, tiny_model: torch.nn.Module,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import denoiser.batch as batch

    first, second = write_photo(tmp_path / "a.png", 1), write_photo(tmp_path / "b.png", 2)
    real = batch.denoise_array

    def flaky(pixels: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        if pixels.shape[0] == 30 and flaky.calls == 0:  # the first file only
            flaky.calls += 1
            raise RuntimeError("simulated kernel failure")
        return real(pixels, *args, **kwargs)

    flaky.calls = 0
    monkeypatch.setattr(batch, "denoise_array", flaky)
    settings = DenoiseSettings(strength=5)
    results = list(denoise_files(plan_outputs([first, second], tmp_path / "o", settings), tiny_model, settings))
    assert [r.status for r in results] == ["failed", "done"]
    assert "a.png" in results[0].message and "simulated kernel failure" in results[0].message
