"""The benchmark harness: the protocol's noise, every method, the table, and isolation for memory figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.bench import format_table
from denoiser.bench_methods import run_bench, run_isolated, run_method
from denoiser.bench_sets import load_set
from denoiser.errors import UnknownNameError
from denoiser.modelfile import save_model
from denoiser.models import create_model
from denoiser.resources import bundled_models_dir


@pytest.fixture
def tiny_set(tmp_path: Path) -> Path:
    folder = tmp_path / "set"
    folder.mkdir()
    y, x = np.mgrid[0:40, 0:48]
    for i in range(2):
        image = np.stack([x * 4 + i * 10, y * 5, (x + y) * 2], axis=2).clip(0, 255).astype(np.uint8)
        PILImage.fromarray(image).save(folder / f"{i}.png")
    PILImage.fromarray((x * 5).astype(np.uint8)).save(tmp_path / "grey.png")
    return folder


@pytest.fixture
def tiny_model(tmp_path: Path) -> str:
    torch.manual_seed(0)
    return str(save_model(create_model("unet", {"widths": [4, 8], "blocks": 0}), tmp_path / "tiny.safetensors"))


def test_sets_load_sorted_as_uint8(tiny_set: Path) -> None:
    images = load_set(tiny_set)
    assert [name for name, _ in images] == ["0.png", "1.png"]
    assert all(image.dtype == np.uint8 and image.shape == (40, 48, 3) for _, image in images)


@pytest.mark.parametrize("method", ["ours", "ours-auto", "nlm", "cbm3d"])
def test_each_method_denoises_and_gives_figures(method: str, tiny_set: Path) -> None:
    if method == "cbm3d":
        pytest.importorskip("bm3d")
    if method.startswith("ours") and not (bundled_models_dir() / "default.safetensors").is_file():
        pytest.skip("no bundled default model in this checkout")
    noisy = run_method("noisy", str(tiny_set), 25.0)
    result = run_method(method, str(tiny_set), 25.0, "default")
    assert result.images == 2 and result.method == method
    # Each method really removes noise (a pass-through would score the noisy row): measured on 2 ramps at sigma 25,
    # noisy 20.4 dB / SSIM 0.19; ours 36.7, ours-auto 32.6, NLM 30.9, CBM3D 36.5 dB, every SSIM above 0.84.
    assert result.psnr > noisy.psnr + 6 and result.ssim > noisy.ssim + 0.4
    assert 0 < result.ssim <= 1 and result.seconds_per_mp > 0
    assert result.peak_mb >= result.baseline_mb > 0


def test_nlm_beats_the_noisy_input(tiny_set: Path) -> None:
    from denoiser.metrics import psnr
    from denoiser.noise import add_gaussian_noise

    clean = load_set(tiny_set)[0][1]
    noisy_psnr = psnr(clean, add_gaussian_noise(clean, 25, 0))
    assert run_method("nlm", str(tiny_set), 25.0, limit=1).psnr > noisy_psnr + 3


def test_unknown_method_is_refused(tiny_set: Path) -> None:
    with pytest.raises(UnknownNameError, match="cbm3d"):
        list(run_bench([str(tiny_set)], [25.0], ["bm4d"]))


@pytest.mark.slow
def test_isolated_run_matches_in_process(tiny_set: Path, tiny_model: str) -> None:
    here = run_method("ours", str(tiny_set), 15.0, tiny_model)
    there = run_isolated("ours", str(tiny_set), 15.0, tiny_model)
    assert there.psnr == pytest.approx(here.psnr, abs=1e-6) and there.ssim == pytest.approx(here.ssim, abs=1e-6)


def test_table_has_a_row_per_result(tiny_set: Path) -> None:
    results = list(run_bench([str(tiny_set)], [15.0, 50.0], ["nlm"], isolated=False))
    table = format_table(results)
    assert table.count("\n") == 3 and "| nlm |" in table and "| 50 |" in table


@pytest.fixture
def tiny_pairs(tmp_path: Path) -> Path:
    """Twelve noisy/clean pairs: the seeded 10 % validation split holds one of them."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:32, 0:40]
    for sub in ("noisy", "clean"):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
    for i in range(12):
        clean = np.stack([x * 5 + i, y * 6, (x + y) * 3], axis=2).clip(0, 255).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).astype(np.uint8)
        PILImage.fromarray(clean).save(tmp_path / "pairs" / "clean" / f"p{i:02d}.png")
        PILImage.fromarray(noisy).save(tmp_path / "pairs" / "noisy" / f"p{i:02d}.png")
    return tmp_path / "pairs"


def test_pair_set_is_scored_on_its_validation_split_with_estimated_noise(tiny_pairs: Path, tiny_model: str) -> None:
    from denoiser.bench_sets import REAL_NOISE, is_pair_set, load_pairs
    from denoiser.validation import split_images

    assert is_pair_set(tiny_pairs)
    held = load_pairs(tiny_pairs)
    _, expected = split_images(12, 0.1, 0)
    assert [name for name, _, _ in held] == [f"p{i:02d}.png" for i in expected]
    training = [name for name, _, _ in load_pairs(tiny_pairs, part="training")]
    assert len(training) == 11 and not set(training) & {name for name, _, _ in held}  # the rest, never the held ones
    results = list(run_bench([str(tiny_pairs)], [15.0, 50.0], ["ours", "nlm", "noisy"], tiny_model, isolated=False))
    # One row per method, not per sigma; "ours" runs blind (auto strength) since there is no true sigma.
    assert [(r.method, r.sigma, r.images) for r in results] == [
        ("ours-auto", REAL_NOISE, 1), ("nlm", REAL_NOISE, 1), ("noisy", REAL_NOISE, 1)]
    by_method = {r.method: r.psnr for r in results}
    assert by_method["nlm"] > by_method["noisy"] + 1  # NLM given the estimated sigma really denoises
    assert "| real | pairs | nlm |" in format_table(results)  # the protocol column: no synthetic noise


def test_noisy_row_is_the_protocol_input(tiny_set: Path) -> None:
    from denoiser.metrics import psnr
    from denoiser.noise import add_gaussian_noise

    images = load_set(tiny_set)
    expected = np.mean([psnr(clean, add_gaussian_noise(clean, 25, i)) for i, (_, clean) in enumerate(images)])
    assert run_method("noisy", str(tiny_set), 25.0).psnr == pytest.approx(expected)


def test_passes_reach_our_model_only(tiny_set: Path, tiny_model: str) -> None:
    one = run_method("ours", str(tiny_set), 25.0, tiny_model)
    eight = run_method("ours", str(tiny_set), 25.0, tiny_model, passes=8)
    assert eight.passes == 8 and one.passes == 1 and eight.psnr != pytest.approx(one.psnr, abs=1e-6)
    assert run_method("nlm", str(tiny_set), 25.0, passes=8).passes == 1


# --- the float protocol and sigma 0 ---------------------------------------------------------------------------


@pytest.fixture
def dark_set(tmp_path: Path) -> Path:
    """Two near-black images: noise of sigma 25 takes many of their pixels below 0."""
    folder = tmp_path / "dark"
    folder.mkdir()
    y, x = np.mgrid[0:32, 0:40]
    for i in range(2):
        PILImage.fromarray(np.stack([x % 4 + i, y % 3, (x + y) % 5], axis=2).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def test_float_protocol_draws_the_clipped_protocols_noise(tiny_set: Path) -> None:
    from denoiser.bench_sets import load_trials
    from denoiser.noise import add_gaussian_noise

    floats, clipped = load_trials(str(tiny_set), 25.0, None, "float"), load_trials(str(tiny_set), 25.0, None, "clipped")
    for i, ((_, clean), real, rounded) in enumerate(zip(load_set(tiny_set), floats, clipped, strict=True)):
        assert real.noisy.dtype == np.float32 and rounded.noisy.dtype == np.uint8
        draws = np.random.default_rng(i).normal(0.0, 25.0, clean.shape)  # the i-th file's seed, as clipped draws it
        # Neither rounded nor clipped: clean/255 plus those draws/255, to float32 precision.
        np.testing.assert_allclose(real.noisy, (clean + draws) / 255.0, rtol=0, atol=1e-6)
        # Rounding and clipping the float input gives the clipped protocol's input: the same draws.
        assert np.array_equal(np.clip(np.round(real.noisy.astype(np.float64) * 255), 0, 255), rounded.noisy)
        assert np.array_equal(rounded.noisy, add_gaussian_noise(clean, 25.0, i))
        assert np.array_equal(real.rounded, rounded.noisy) and np.array_equal(real.clean, clean)
    # 8-bit-only methods get exactly the clipped protocol's input, so their figures do not move.
    for method in ("nlm", "noisy"):
        assert run_method(method, str(tiny_set), 25.0, protocol="float").psnr == run_method(
            method, str(tiny_set), 25.0, protocol="clipped").psnr


def test_float_input_leaves_0_1_for_a_dark_image_and_reaches_our_model_unchanged(
        dark_set: Path, tiny_model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import denoiser.inference
    from denoiser.bench_sets import load_trials

    real = load_trials(str(dark_set), 25.0, None, "float")[0].noisy
    assert real.min() < -0.05 and real.max() < 1  # negative values kept, not clipped
    assert (real < 0).mean() > 0.3
    seen: list[np.ndarray] = []
    original = denoiser.inference.denoise_array

    def spy(image: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        seen.append(image.copy())
        return original(image, *args, **kwargs)

    monkeypatch.setattr(denoiser.inference, "denoise_array", spy)
    for method in ("ours", "ours-auto"):
        seen.clear()
        result = run_method(method, str(dark_set), 25.0, tiny_model, limit=1, protocol="float")
        assert result.protocol == "float" and np.isfinite(result.psnr)
        assert len(seen) == 1 and seen[0].dtype == np.float32 and np.array_equal(seen[0], real)


def test_protocol_is_recorded_in_results_table_and_json(tiny_set: Path) -> None:
    import json

    from denoiser.bench import results_json
    from denoiser.bench_sets import PROTOCOLS

    assert PROTOCOLS == ("clipped", "float")
    clipped = list(run_bench([str(tiny_set)], [25.0], ["nlm", "noisy"], isolated=False))
    assert [(r.protocol, r.note) for r in clipped] == [("clipped", ""), ("clipped", "")]  # default: as before
    results = list(run_bench([str(tiny_set)], [25.0], ["nlm", "noisy"], isolated=False, protocol="float"))
    assert [r.protocol for r in results] == ["float", "float"]
    notes = {r.method: r.note for r in results}
    assert "uint8" in notes["nlm"] and "rounded and clipped" in notes["nlm"]
    assert "rounded and clipped" in notes["noisy"]
    table = format_table(results)
    assert "| protocol |" in table.splitlines()[0] and "| 25 | float | nlm [1] |" in table
    assert f"[1] {notes['nlm']}" in table and f"[2] {notes['noisy']}" in table
    rows = json.loads(results_json(results))
    assert [(row["method"], row["protocol"], row["note"]) for row in rows] == [
        ("nlm", "float", notes["nlm"]), ("noisy", "float", notes["noisy"])]


def test_pair_sets_ignore_the_protocol(tiny_pairs: Path) -> None:
    from denoiser.bench_sets import PAIRS_PROTOCOL

    clipped = list(run_bench([str(tiny_pairs)], [25.0], ["nlm"], isolated=False))
    floats = list(run_bench([str(tiny_pairs)], [25.0], ["nlm"], isolated=False, protocol="float"))
    assert [r.protocol for r in clipped + floats] == [PAIRS_PROTOCOL, PAIRS_PROTOCOL]
    assert floats[0].psnr == clipped[0].psnr


@pytest.mark.parametrize("protocol", ["clipped", "float"])
def test_sigma_0_adds_no_noise_and_runs_every_method(protocol: str, tiny_set: Path, tiny_model: str) -> None:
    import json

    from denoiser.bench import results_json
    from denoiser.bench_sets import load_trials

    for (_, clean), trial in zip(load_set(tiny_set), load_trials(str(tiny_set), 0.0, None, protocol), strict=True):
        assert np.array_equal(trial.rounded, clean)
        expected = clean if protocol == "clipped" else clean.astype(np.float32) / np.float32(255)
        assert np.array_equal(trial.noisy, expected)
    methods = ["ours", "ours-auto", "nlm", "noisy"]
    results = {r.method: r for r in run_bench([str(tiny_set)], [0.0], methods, tiny_model, isolated=False,
                                              protocol=protocol)}
    assert set(results) == set(methods) and all(r.sigma == 0 for r in results.values())
    assert 10 < results["ours-auto"].psnr < 100 and 0 < results["ours-auto"].ssim <= 1  # input vs output
    assert "sigma 0" in results["ours-auto"].note
    assert results["nlm"].psnr == results["noisy"].psnr == float("inf")  # NLM at sigma 0: the input, unchanged
    table = format_table(list(results.values()))
    noisy_row = next(line for line in table.splitlines() if "| noisy" in line)
    assert f"| 0 | {protocol} | noisy" in noisy_row and "| inf | 1.0000 |" in noisy_row
    rows = json.loads(results_json(list(results.values())), parse_constant=pytest.fail)  # strict JSON: no Infinity
    assert {row["method"]: row["psnr"] for row in rows}["noisy"] is None


def test_cbm3d_at_sigma_0_returns_the_input(tiny_set: Path) -> None:
    pytest.importorskip("bm3d")
    assert run_method("cbm3d", str(tiny_set), 0.0, limit=1, protocol="float").psnr == float("inf")


def test_protocol_and_sigma_arguments_are_checked(tiny_set: Path) -> None:
    import argparse

    from denoiser.bench import add_bench_arguments

    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    assert parser.parse_args([]).protocol == "clipped"
    args = parser.parse_args(["--protocol", "float", "--sigmas", "0", "25"])
    assert args.protocol == "float" and args.sigmas == [0.0, 25.0]
    for bad in (["--protocol", "raw"], ["--protocol", "Float"], ["--sigmas", "-5"], ["--sigmas", "nan"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    with pytest.raises(UnknownNameError, match="clipped"):
        list(run_bench([str(tiny_set)], [25.0], ["nlm"], isolated=False, protocol="raw"))


def test_an_installed_copy_finds_its_sets_in_the_data_folder_given(tmp_path: Path, tiny_set: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 16: from an installed copy, ``denoiser bench`` looked for ../shared beside the package and failed."""
    from denoiser.bench_sets import CHECKOUT_DATA, DATA_VARIABLE, data_root, set_folder
    from denoiser.cli import main

    monkeypatch.delenv(DATA_VARIABLE, raising=False)
    assert data_root() == CHECKOUT_DATA
    data = tmp_path / "data"
    (data / "bench").mkdir(parents=True)
    tiny_set.rename(data / "bench" / "mine")
    with pytest.raises(Exception, match="--data"):
        set_folder("mine")
    assert main(["bench", "--data", str(data), "--sets", "mine", "--sigmas", "25", "--methods", "nlm"]) == 0
    assert "mine sigma 25" in capsys.readouterr().out
    monkeypatch.delenv(DATA_VARIABLE)
