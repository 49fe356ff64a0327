"""The ONNX Runtime engine (issue 16): every family exported and run gives torch's result, over tiles, with noise
maps of one or two planes, the same progress and cancel; graphs are cached by the model's fingerprint; ``auto``
picks ONNX Runtime on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from denoiser.errors import Cancelled, DenoiserError, UnknownNameError
from denoiser.inference import TileSettings, denoise_array
from denoiser.models import create_model, families
from denoiser.models.base import Autoencoder
from denoiser.onnx_export import onnx_cache_dir, onnx_file_for
from denoiser.onnx_runtime import level_planes
from denoiser.progress import Progress
from denoiser.tile_runners import resolve_engine

pytest.importorskip("onnxruntime")


def tiny(family: str, channels: int = 3, noise_channels: int = 2, seed: int = 0) -> Autoencoder:
    torch.manual_seed(seed)
    names = create_model(family).config.__dataclass_fields__
    wanted = {"channels": channels, "widths": (4, 8), "blocks": 1, "latent_channels": 4,
              "noise_channels": noise_channels}
    return create_model(family, {key: value for key, value in wanted.items() if key in names})


def photo(height: int = 40, width: int = 52, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(1).random((height, width, channels), dtype=np.float32)


def both(image: np.ndarray, model: Autoencoder, level: float | np.ndarray, **tiles: object) -> tuple[np.ndarray, ...]:
    return tuple(denoise_array(image, model, level, tiles=TileSettings(engine=engine, **tiles), device="cpu")
                 for engine in ("torch", "onnx"))


@pytest.mark.parametrize("family", families())
def test_every_family_gives_torchs_result(family: str) -> None:
    reference, onnx = both(photo(), tiny(family), 20.0)
    np.testing.assert_allclose(onnx, reference, atol=1e-4)


@pytest.mark.parametrize("noise_channels", [1, 2])
def test_noise_maps_of_one_and_two_planes_over_several_tiles(noise_channels: int) -> None:
    model = tiny("unet", noise_channels=noise_channels)
    image = photo(70, 90)
    rows = np.linspace(5, 40, 70, dtype=np.float32)[:, None, None]
    for level in (np.broadcast_to(rows, (70, 90, 1)).copy(), np.concatenate([np.broadcast_to(rows, (70, 90, 1)),
                                                                             np.full((70, 90, 1), 8, np.float32)], 2),
                  np.array([[[12.0, 4.0]]], np.float32)):
        reference, onnx = both(image, model, level, tile=32, overlap=8)
        np.testing.assert_allclose(onnx, reference, atol=1e-4)


def test_a_grey_model_and_a_grey_photo_through_a_colour_model() -> None:
    reference, onnx = both(photo(channels=1), tiny("unet", channels=1), 15.0)
    np.testing.assert_allclose(onnx, reference, atol=1e-4)
    reference, onnx = both(photo(channels=1), tiny("unet"), 15.0)
    np.testing.assert_allclose(onnx, reference, atol=1e-4)


def test_progress_and_cancel_are_the_same_as_with_torch() -> None:
    model, image = tiny("unet"), photo(96, 96)
    events: dict[str, list[tuple[int, int]]] = {}
    for engine in ("torch", "onnx"):
        seen: list[Progress] = []
        denoise_array(image, model, 10.0, tiles=TileSettings(tile=32, overlap=8, engine=engine), device="cpu",
                      on_progress=seen.append)
        events[engine] = [(e.done, e.total) for e in seen]
    assert events["onnx"] == events["torch"] and events["onnx"][-1][0] > 1
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        denoise_array(image, model, 10.0, tiles=TileSettings(tile=32, overlap=8, engine="onnx"), device="cpu",
                      should_stop=lambda: next(calls) >= 2)


def test_graphs_are_cached_by_fingerprint(tmp_path: Path) -> None:
    model = tiny("unet")
    first = onnx_file_for(model)
    assert first.parent == onnx_cache_dir() and first.is_file()
    stamp = first.stat().st_mtime_ns
    assert onnx_file_for(model) == first and first.stat().st_mtime_ns == stamp  # exported once
    other = tiny("unet", seed=1)
    assert onnx_file_for(other) != first  # other weights, another graph
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_auto_picks_onnx_runtime_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.delenv("DENOISER_ENGINE")
    assert resolve_engine("auto", cpu) == "onnx"
    assert resolve_engine("torch", cpu) == "torch"
    monkeypatch.setenv("DENOISER_ENGINE", "torch")
    assert resolve_engine("auto", cpu) == "torch" and resolve_engine("onnx", cpu) == "onnx"
    with pytest.raises(DenoiserError, match="CPU"):
        resolve_engine("onnx", torch.device("cuda"))
    with pytest.raises(UnknownNameError):
        resolve_engine("tensorrt", cpu)


def test_level_planes_feed_two_planes() -> None:
    assert level_planes(0.1, 2, 3, 4).shape == (2, 2, 3, 4)
    one = np.full((2, 1, 3, 4), 0.2, np.float32)
    assert np.all(level_planes(one, 2, 3, 4) == np.float32(0.2))
    per_tile = np.array([0.1, 0.3], np.float32).reshape(1, 2, 1, 1)
    planes = level_planes(np.broadcast_to(per_tile, (2, 2, 1, 1)), 2, 3, 4)
    assert planes.shape == (2, 2, 3, 4) and np.all(planes[:, 1] == np.float32(0.3))
    with pytest.raises(DenoiserError):
        level_planes(np.zeros((1, 3, 1, 1), np.float32), 1, 3, 4)


def test_a_stop_asked_for_during_a_tile_abandons_it() -> None:
    """A megapixel tile takes about a second on two cores: a cancelled job (a strength change replacing the full
    pass) must not wait for it. The stop turns True after the run has started; the run ends in Cancelled."""
    from denoiser.onnx_runtime import OnnxTileRunner

    torch.manual_seed(0)
    model = create_model("unet", {"widths": [32, 64, 128, 256]})  # the default's size: seconds for this tile
    runner = OnnxTileRunner(onnx_file_for(model))
    asked: list[float] = []

    def stop_on_the_third_poll() -> bool:
        asked.append(0.0)
        return len(asked) >= 3

    tiles = np.random.default_rng(0).random((1, 1536, 1536, 3), dtype=np.float32)
    with pytest.raises(Cancelled):
        runner(tiles, 0.1, stop_on_the_third_poll)
    assert len(asked) == 3
    small = photo(64, 64)[None]
    np.testing.assert_allclose(runner(small, 0.1, lambda: False), runner(small, 0.1), atol=1e-6)  # still usable


def test_a_stop_asked_for_during_a_torch_tile_abandons_it_between_layers() -> None:
    """torch has no terminate flag: each layer asks before it runs, so a cancel waits one layer, not one tile. The
    hooks are gone afterwards (a run without a stop is not slowed or stopped by them)."""
    from denoiser.tile_runners import tile_runner

    model = tiny("unet")
    run = tile_runner("torch", model, torch.device("cpu"))
    asked: list[int] = []

    def stop_on_the_fifth_layer() -> bool:
        asked.append(1)
        return len(asked) >= 5

    tiles = photo(64, 64)[None]
    with pytest.raises(Cancelled):
        run(tiles, 0.1, stop_on_the_fifth_layer)
    assert len(asked) == 5
    layers = [layer for layer in model.modules() if not any(layer.children())]
    assert len(layers) > 5 and all(not layer._forward_pre_hooks for layer in layers)
    np.testing.assert_array_equal(run(tiles, 0.1, lambda: False), run(tiles, 0.1))


def test_a_torch_runs_stop_does_not_reach_another_thread_running_the_same_model() -> None:
    """The app can run one model in two threads at once (a preview beside a full pass): the layers' hooks of a
    cancelled run must not cancel the other thread's forward pass."""
    import threading

    from denoiser.tile_runners import _stopping_between_layers, tile_runner

    model = tiny("unet")
    run = tile_runner("torch", model, torch.device("cpu"))
    tiles = photo(64, 64)[None]
    expected = run(tiles, 0.1)
    outcome: dict[str, object] = {}

    def other_thread() -> None:
        try:
            outcome["result"] = run(tiles, 0.1)
        except Exception as err:  # noqa: BLE001 - the test reports whatever it was
            outcome["error"] = err

    with _stopping_between_layers(model, lambda: True):  # this thread's run has been cancelled
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    assert "error" not in outcome, outcome
    np.testing.assert_array_equal(outcome["result"], expected)
