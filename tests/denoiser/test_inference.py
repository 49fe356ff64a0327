"""Tests of tiled inference: tiles reproduce whole-image inference, progress, cancel, dtypes, OOM fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from whole_image import denoise_whole

from denoiser.errors import Cancelled, DenoiserError, UnknownNameError
from denoiser.inference import TileSettings, denoise_array, resolve_device
from denoiser.latents import extract_latent
from denoiser.models import Autoencoder, ModelConfig, create_model
from denoiser.models.base import zero_penalty

UNET = {"widths": [4, 8, 16], "blocks": 1}
FAST = {"widths": [4, 8, 16], "blocks": 0}  # radius 8, margin 24: fits a 64-pixel tile's half


def make_model(family: str = "unet", config: dict | None = None, channels: int = 3) -> Autoencoder:
    torch.manual_seed(0)
    config = dict(config or FAST, channels=channels)
    if family == "undercomplete":
        config["latent_channels"] = 8
    return create_model(family, config)


def noisy_image(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus a square plus noise, float32 in 0-1."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.5 + 0.3 * x * y][:channels], axis=2)
    base[height // 4 : height // 2, width // 3 : width // 2] = 0.9
    return (base + rng.normal(0, 0.1, base.shape)).astype(np.float32)


class Wrapper(Autoencoder):
    """Delegates to a real model, counting calls and the input sizes it sees."""

    def __init__(self, inner: Autoencoder) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config
        self.calls = 0
        self.sizes: list[tuple[int, int]] = []

    @property
    def size_multiple(self) -> int:
        return self.inner.size_multiple

    @property
    def receptive_radius(self) -> int:
        return self.inner.receptive_radius

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor | float = 0.0) -> torch.Tensor:
        self.calls += 1
        self.sizes.append(tuple(x.shape[-2:]))
        return self.inner(x, noise_level)


class OutOfMemoryAbove(Wrapper):
    """Fails like CUDA does for inputs larger than ``limit`` x ``limit``."""

    def __init__(self, inner: Autoencoder, limit: int) -> None:
        super().__init__(inner)
        self.limit = limit

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor | float = 0.0) -> torch.Tensor:
        if max(x.shape[-2:]) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().forward(x, noise_level)


BLUR_LEVEL = 10
"""The noise level :class:`BoxBlur` is run at: any but 0 (it ignores it; at 0 the photo is returned as it is)."""


class BoxBlur(Autoencoder):
    """Mean over a (2r+1)^2 window with zero padding: every pixel of its receptive field weighs the same,
    so any tile edge inside the field shows up in the output (unlike a random net, whose far field is faint)."""

    family = "box"

    def __init__(self, radius: int = 10, multiple: int = 4) -> None:
        super().__init__()
        self.config = ModelConfig(channels=3)
        self.radius, self.multiple = radius, multiple
        self.gain = torch.nn.Parameter(torch.ones(()))

    @property
    def size_multiple(self) -> int:
        return self.multiple

    @property
    def receptive_radius(self) -> int:
        return self.radius

    def forward_train(self, x, noise_level):
        size = 2 * self.radius + 1
        out = F.avg_pool2d(x, size, stride=1, padding=self.radius, count_include_pad=True)
        return self.gain * out, zero_penalty(x)


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a - b).max())


@pytest.mark.parametrize(
    ("family", "config", "tile"),
    [("unet", UNET, 160), ("unet", FAST, 64), ("undercomplete", FAST, 64), ("nafnet", {"widths": [4, 8, 16]}, 96)],
    ids=["unet-160", "unet-64", "undercomplete-64", "nafnet-96"],
)
def test_tiled_matches_whole_image(family, config, tile):
    """At overlap = receptive_margin the tiles reproduce one whole-image pass; at overlap 0 they do not."""
    model = make_model(family, config)
    with torch.no_grad():  # NAFNet's residual branches start at zero: open them, or its blocks would do nothing
        for name, parameter in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                parameter.fill_(0.5)
    image = noisy_image(150, 190)
    whole = denoise_whole(image, model, 25)
    assert whole.shape == image.shape

    events = []
    tiled = denoise_array(
        image, model, 25, tiles=TileSettings(tile=tile, overlap=model.receptive_margin), on_progress=events.append
    )
    assert events[0].total >= 4  # the image really spans several tiles
    assert tiled.dtype == np.float32 and tiled.shape == image.shape
    assert max_difference(tiled, whole) < 1e-3

    seams = denoise_array(image, model, 25, tiles=TileSettings(tile=tile, overlap=0))
    assert max_difference(seams, whole) > 1e-3


@pytest.mark.parametrize(("height", "width"), [(100, 130), (20, 300), (300, 20)], ids=["block", "wide", "tall"])
def test_tiled_box_blur_is_exact(height, width):
    """A flat receptive field makes any seam visible: default overlap is exact, a short one is not.

    The thin strips are a single tile high (or wide): the long side must still get the full overlap.
    """
    model = BoxBlur(radius=10, multiple=4)
    image = noisy_image(height, width)
    whole = denoise_whole(image, model, 0)
    tiled = denoise_array(image, model, BLUR_LEVEL, tiles=TileSettings(tile=64))
    assert max_difference(tiled, whole) < 1e-5
    too_short = 16
    assert 3 * too_short // 8 < model.radius  # its dead zone (3/8 of it) is narrower than the radius
    seams = denoise_array(image, model, BLUR_LEVEL, tiles=TileSettings(tile=64, overlap=too_short))
    assert max_difference(seams, whole) > 1e-3


def test_tile_too_small_for_its_overlap_is_grown_and_stays_exact():
    """A tile asked smaller than twice the overlap grows, so the overlap is honoured and no seam appears."""
    model = BoxBlur(radius=10, multiple=4)  # receptive_margin 28: a 48-pixel tile could not hold it twice
    image = noisy_image(120, 150)
    whole = denoise_whole(image, model, 0)
    events = []
    tiled = denoise_array(image, model, BLUR_LEVEL, tiles=TileSettings(tile=48), on_progress=events.append)
    assert max_difference(tiled, whole) < 1e-5
    assert "of 60x60" in events[0].message  # grown to 2 * 28 + 4, a multiple of 4


def test_batches_give_the_same_result():
    model = make_model()
    image = noisy_image(100, 130)
    one = denoise_array(image, model, 15, tiles=TileSettings(tile=64, batch_size=1))
    three = denoise_array(image, model, 15, tiles=TileSettings(tile=64, batch_size=3))
    assert max_difference(one, three) < 1e-5


def test_progress_counts_tiles_up_to_total():
    model = make_model()
    events = []
    denoise_array(
        noisy_image(100, 130), model, 15, tiles=TileSettings(tile=64, batch_size=3), on_progress=events.append
    )
    assert events[0].done == 0 and events[0].stage == "denoise"
    total = events[0].total
    assert total > 3
    assert all(event.total == total for event in events)
    done = [event.done for event in events]
    assert all(0 < later - earlier <= 3 for earlier, later in zip(done[:-1], done[1:], strict=True))
    assert done[-1] == total and events[-1].fraction == 1.0


def test_should_stop_cancels_within_one_batch():
    model = Wrapper(make_model())
    events = []
    with pytest.raises(Cancelled):
        denoise_array(
            noisy_image(100, 130),
            model,
            15,
            tiles=TileSettings(tile=64, batch_size=1),
            on_progress=events.append,
            should_stop=lambda: model.calls >= 1,
        )
    assert events[0].total > 2
    assert 1 <= model.calls <= 2
    assert events[-1].done < events[0].total


def test_cancel_before_start_runs_nothing():
    model = Wrapper(make_model())
    with pytest.raises(Cancelled):
        denoise_array(noisy_image(40, 40), model, 15, should_stop=lambda: True)
    assert model.calls == 0


def test_grey_image_through_colour_model():
    """A grey image is run as three equal planes and averaged back to one."""
    model = make_model(channels=3)
    grey = noisy_image(60, 70, channels=1)
    out = denoise_array(grey, model, 20, tiles=TileSettings(tile=64))
    assert out.shape == (60, 70, 1)
    expected = denoise_array(np.repeat(grey, 3, axis=2), model, 20, tiles=TileSettings(tile=64))
    assert max_difference(out, expected.mean(axis=2, keepdims=True)) < 1e-5
    flat = denoise_array(grey[:, :, 0], model, 20, tiles=TileSettings(tile=64))
    assert flat.shape == (60, 70, 1)
    assert max_difference(flat, out) < 1e-6
    assert max_difference(denoise_whole(grey, model, 20), out) < 1e-3


def test_colour_image_through_grey_model():
    """Each colour plane goes through the grey model on its own."""
    model = make_model(channels=1)
    colour = noisy_image(60, 70, channels=3)
    out = denoise_array(colour, model, 20, tiles=TileSettings(tile=64))
    assert out.shape == (60, 70, 3)
    for c in range(3):
        plane = denoise_array(colour[:, :, c : c + 1], model, 20, tiles=TileSettings(tile=64))
        assert max_difference(out[:, :, c : c + 1], plane) < 1e-6
    assert not np.allclose(out[:, :, 0], out[:, :, 1])


def test_refuses_images_with_other_channel_counts():
    with pytest.raises(DenoiserError):
        denoise_array(np.zeros((20, 20, 4), dtype=np.uint8), make_model(), 10)


def test_uint8_uint16_and_float_inputs_agree():
    model = make_model()
    pixels = np.random.default_rng(1).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    results = [
        denoise_array(image, model, 25, tiles=TileSettings(tile=64))
        for image in (
            pixels,
            pixels.astype(np.uint16) * 257,
            pixels.astype(np.float32) / 255,
            pixels.astype(np.float64) / 255,
        )
    ]
    for other in results[1:]:
        assert other.dtype == np.float32
        assert max_difference(results[0], other) < 1e-3


def test_sigma_changes_the_result():
    model = make_model()
    image = noisy_image(40, 50)
    assert max_difference(denoise_array(image, model, 5), denoise_array(image, model, 50)) > 1e-4


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_strength_zero_leaves_the_photo_as_it_is(dtype):
    """Level 0 everywhere (a fixed strength of 0, or auto at 0 %) returns the pixels unchanged: the network itself
    at level 0 still alters them, yet the app and the CLI tell users that 0 leaves a photo as it is."""
    model = make_model()
    image = np.clip(noisy_image(40, 50), 0, 1)
    if dtype != np.float32:
        image = np.round(image * np.iinfo(dtype).max).astype(dtype)
    expected = image.astype(np.float32) / (np.iinfo(dtype).max if dtype != np.float32 else 1)
    progress = []
    for level in (0, 0.0, np.zeros((40, 50, 1), np.float32), np.zeros((40, 50, 2), np.float32)):
        out = denoise_array(image, model, level, on_progress=progress.append)
        assert out.dtype == np.float32 and out.shape == (40, 50, 3)
        np.testing.assert_array_equal(out, expected)
    assert progress[-1].done == progress[-1].total == 1


def test_a_level_map_zero_in_places_still_runs_the_model():
    model = make_model()
    image = np.clip(noisy_image(40, 50), 0, 1)
    level = np.zeros((40, 50, 2), np.float32)
    level[:, :, 1] = 10.0  # colour noise only
    assert max_difference(denoise_array(image, model, level), image) > 1e-4


def test_model_in_training_mode_is_switched_to_eval():
    """The variational family samples in training mode; inference must decode the mean every time."""
    model = make_model("variational", {**FAST, "latent_channels": 4}).train()
    image = noisy_image(40, 50)
    first = denoise_array(image, model, 10)
    model.train()
    assert np.array_equal(first, denoise_array(image, model, 10))


def test_out_of_memory_falls_back_to_smaller_tiles():
    model = make_model()
    image = noisy_image(100, 130)
    reference = denoise_array(image, model, 25, tiles=TileSettings(tile=256))
    failing = OutOfMemoryAbove(model, limit=64)
    events = []
    out = denoise_array(image, failing, 25, tiles=TileSettings(tile=256), on_progress=events.append)
    assert max_difference(out, reference) < 1e-3
    assert failing.sizes and all(max(size) <= 64 for size in failing.sizes)
    assert any("retrying" in event.message for event in events)


def test_out_of_memory_with_the_smallest_tile_is_an_error():
    failing = OutOfMemoryAbove(make_model(), limit=8)
    with pytest.raises(DenoiserError, match="out of memory"):
        denoise_array(noisy_image(100, 130), failing, 25, tiles=TileSettings(tile=256))


def test_other_runtime_errors_are_not_retried():
    class Broken(Wrapper):
        def forward(self, x, noise_level=0.0):
            self.calls += 1
            raise RuntimeError("shape mismatch")

    model = Broken(make_model())
    with pytest.raises(RuntimeError, match="shape mismatch"):
        denoise_array(noisy_image(100, 130), model, 25, tiles=TileSettings(tile=256))
    assert model.calls == 1


def test_resolve_device_auto_is_cpu_without_accelerators():
    mps = getattr(torch.backends, "mps", None)
    if torch.cuda.is_available() or (mps is not None and mps.is_available()):
        pytest.skip("an accelerator is available here")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_resolve_device_unknown_name():
    with pytest.raises(UnknownNameError) as caught:
        resolve_device("tpu")
    assert "cuda" in str(caught.value) and "tpu" in str(caught.value)


def test_resolve_device_cuda_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    for name in ("cuda", "cuda:0"):
        with pytest.raises(DenoiserError, match="CUDA"):
            resolve_device(name)


@pytest.mark.parametrize(
    ("family", "image_channels", "model_channels"),
    [("unet", 3, 3), ("undercomplete", 3, 3), ("sparse", 1, 3), ("variational", 3, 1)],
)
def test_extract_latent_is_small(family, image_channels, model_channels):
    """The bottleneck of a shrunk copy: (latent_channels, h, w) with the longer side at most max_side."""
    config = FAST if family == "unet" else dict(FAST, latent_channels=5)
    torch.manual_seed(0)
    model = create_model(family, dict(config, channels=model_channels))
    image = (noisy_image(96, 128, channels=image_channels) * 255).clip(0, 255).astype(np.uint8)
    latent = extract_latent(image, model, 25, max_side=32, device="cpu")
    expected_channels = 5 if family != "unet" else FAST["widths"][-1]
    assert latent.dtype == np.float32
    assert latent.shape == (expected_channels, 24 // 4, 32 // 4)
    assert np.isfinite(latent).all()
    small = extract_latent(image[:10, :14], model, 25, max_side=32, device="cpu")
    assert small.shape == (expected_channels, 3, 4)  # padded up to the size multiple, not scaled


def test_every_orientation_is_undone_by_its_inverse():
    from denoiser.inference import _ORIENTATIONS

    array = np.arange(5 * 7 * 2).reshape(5, 7, 2)
    seen = set()
    for forward, inverse in _ORIENTATIONS:
        turned = forward(array)
        np.testing.assert_array_equal(inverse(turned), array)
        seen.add(turned.tobytes() + bytes(turned.shape))
    assert len(seen) == 8  # eight different orientations: the whole dihedral group


@pytest.mark.parametrize("passes", [2, 4, 8])
def test_passes_average_the_model_over_orientations(passes):
    model = make_model()
    image = noisy_image(40, 56)
    tiles = TileSettings(tile=32)

    def run(array: np.ndarray) -> np.ndarray:
        return denoise_array(np.ascontiguousarray(array), model, 20, tiles=tiles)

    # Written out here independently of the engine's table: flips first, then the four transposed ones.
    views = [run(image), run(image[:, ::-1])[:, ::-1], run(image[::-1])[::-1], run(image[::-1, ::-1])[::-1, ::-1],
             run(image.transpose(1, 0, 2)).transpose(1, 0, 2), np.rot90(run(np.rot90(image, 1)), -1),
             np.rot90(run(np.rot90(image, -1)), 1), np.rot90(run(np.rot90(image, 1)[:, ::-1])[:, ::-1], -1)]
    result = denoise_array(image, model, 20, tiles=TileSettings(tile=32, passes=passes))
    assert result.shape == image.shape and result.dtype == np.float32
    np.testing.assert_allclose(result, np.mean(views[:passes], axis=0), atol=1e-5)
    assert np.abs(result - views[0]).max() > 1e-4  # the passes really differ from one run


def test_passes_report_one_progress_run_and_refuse_other_counts():
    model = make_model()
    events = []
    denoise_array(noisy_image(48, 64), model, 15, tiles=TileSettings(tile=32, passes=4), on_progress=events.append)
    counted = [event for event in events if event.total]
    assert len({event.total for event in counted}) == 1
    done = [event.done for event in counted]
    assert done == sorted(done) and done[-1] == counted[-1].total
    with pytest.raises(DenoiserError, match="passes must be one of 1, 2, 4, 8"):
        denoise_array(noisy_image(16, 16), model, 15, tiles=TileSettings(passes=3))


def test_cpu_tiles_of_a_large_photo_run_little_more_than_its_pixels():
    """Square 512 tiles with the default's 160-pixel overlap ran 2.3 times a 12 MP photo's pixels through the
    network; tiles cut to the canvas run at most 1.5 times, each no larger than the CPU's tile budget."""
    from denoiser.inference import SINGLE_TILE_PIXELS_CPU, default_tile_size
    from denoiser.tiling import TileGrid, canvas_padding

    model = create_model("unet", {"widths": [32, 64, 128, 256]})
    assert model.receptive_margin == 160
    padding = canvas_padding(3000, 4000, model.receptive_radius, model.size_multiple)
    height, width = 3000 + padding.top + padding.bottom, 4000 + padding.left + padding.right
    rows, cols = default_tile_size(model, torch.device("cpu"), (height, width))
    grid = TileGrid(height, width, (rows, cols), model.receptive_margin, model.size_multiple)
    assert rows * cols <= SINGLE_TILE_PIXELS_CPU
    assert len(grid) * rows * cols <= 1.5 * 3000 * 4000


def test_balanced_cpu_tiles_reproduce_the_whole_image():
    torch.manual_seed(0)
    model = create_model("unet", {"widths": [8, 16]})
    image = np.random.default_rng(3).random((150, 260, 3), dtype=np.float32)
    whole = denoise_array(image, model, 20.0, tiles=TileSettings(tile=512, engine="torch"), device="cpu")
    import denoiser.inference as inference

    budget = inference.SINGLE_TILE_PIXELS_CPU
    inference.SINGLE_TILE_PIXELS_CPU = 120 * 120  # several rectangular tiles on this small image
    try:
        tiled = denoise_array(image, model, 20.0, tiles=TileSettings(engine="torch"), device="cpu")
    finally:
        inference.SINGLE_TILE_PIXELS_CPU = budget
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
