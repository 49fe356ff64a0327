"""Torch noise synthesis: opponent maps, each noise kind's statistics against its map, the camera pipeline."""

from __future__ import annotations

import math

import pytest
import torch

from denoiser.config import ConfigError
from denoiser.errors import DenoiserError, UnknownNameError
from denoiser.noise_maps import from_opponent, local_noise_maps, to_opponent
from denoiser.synthesis import NOISE_KINDS, SynthesisMix, SynthesisResult, synthesize_batch

GAUSSIAN_KINDS = ("gaussian_clipped", "gaussian_float", "gaussian_16bit", "gaussian_varying")
# The camera pipeline without its random post-processing, for statistics of the raw noise after development.
PLAIN_CAMERA = {"jpeg_probability": 0.0, "smoothing_probability": 0.0, "sharpening_probability": 0.0}


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def only(kind: str, **fields: object) -> SynthesisMix:
    return SynthesisMix(weights={kind: 1.0}, **fields)


def flat(levels: list[float], channels: int = 3, size: int = 64) -> torch.Tensor:
    return torch.tensor(levels, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, channels, size, size).clone()


def scene(count: int = 4, channels: int = 3, size: int = 32) -> torch.Tensor:
    """Smooth, different clean patches in (0.1, 0.9)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    patches = [
        torch.stack([0.1 + 0.8 * (x * (c + 1) / channels + y * (n + 1) / count) / 2 for c in range(channels)])
        for n in range(count)
    ]
    return torch.stack(patches)


def neighbour_correlation(noise: torch.Tensor) -> float:
    """Correlation of each pixel's noise with its right-hand neighbour's, all patches and channels pooled."""
    left, right = noise[..., :-1].flatten(), noise[..., 1:].flatten()
    return float(torch.corrcoef(torch.stack([left, right]))[0, 1])


# ---------------------------------------------------------------------------------------------------------------
# Opponent colour space and local noise maps
# ---------------------------------------------------------------------------------------------------------------


def test_opponent_transform_is_orthonormal() -> None:
    rgb = torch.rand((2, 3, 8, 8), generator=seeded(0), dtype=torch.float64)
    opp = to_opponent(rgb)
    torch.testing.assert_close(from_opponent(opp), rgb, rtol=0, atol=1e-12)
    torch.testing.assert_close((opp**2).sum(dim=1), (rgb**2).sum(dim=1), rtol=0, atol=1e-12)
    # The documented axes: grey is pure Y; red minus blue is C1; green against red and blue is C2.
    grey = to_opponent(torch.ones((1, 3, 1, 1), dtype=torch.float64)).flatten()
    torch.testing.assert_close(grey, torch.tensor([math.sqrt(3), 0.0, 0.0], dtype=torch.float64))
    red_blue = to_opponent(torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64).view(1, 3, 1, 1)).flatten()
    torch.testing.assert_close(red_blue, torch.tensor([0.0, math.sqrt(2), 0.0], dtype=torch.float64))
    green = to_opponent(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1)).flatten()
    torch.testing.assert_close(green, torch.tensor([1 / math.sqrt(3), 0.0, -2 / math.sqrt(6)], dtype=torch.float64))


def test_opponent_rejects_other_shapes() -> None:
    with pytest.raises(DenoiserError):
        to_opponent(torch.zeros(1, 1, 4, 4))
    with pytest.raises(DenoiserError):
        from_opponent(torch.zeros(3, 4, 4))


@pytest.mark.parametrize("channels", [1, 3])
def test_local_noise_maps_read_white_noise_sigma(channels: int) -> None:
    sigma = 0.1
    noise = sigma * torch.randn((2, channels, 64, 64), generator=seeded(1))
    maps = local_noise_maps(noise)
    assert maps.shape == (2, 2, 64, 64) and maps.dtype == torch.float32
    assert float(maps[:, 0].mean()) == pytest.approx(sigma, rel=0.03)
    assert float(maps[:, 1].mean()) == pytest.approx(sigma, rel=0.03)
    # Local: no pixel's window reads far off (std of a ~200-sample window's estimate is about 5 %).
    assert float(maps.min()) > 0.75 * sigma and float(maps.max()) < 1.25 * sigma
    if channels == 1:
        torch.testing.assert_close(maps[:, 0], maps[:, 1])


def test_local_noise_maps_of_pure_luminance_noise_have_no_colour() -> None:
    grey = 0.05 * torch.randn((2, 1, 48, 48), generator=seeded(2))
    maps = local_noise_maps(grey.expand(-1, 3, -1, -1))
    assert float(maps[:, 1].abs().max()) < 1e-6
    assert float(maps[:, 0].mean()) == pytest.approx(0.05 * math.sqrt(3), rel=0.03)


def test_local_noise_maps_follow_a_step_in_noise() -> None:
    noise = torch.randn((1, 3, 64, 64), generator=seeded(3))
    noise[..., :32] *= 0.02
    noise[..., 32:] *= 0.08
    maps = local_noise_maps(noise, radius=2.0)
    assert float(maps[0, :, :, :20].mean()) == pytest.approx(0.02, rel=0.1)
    assert float(maps[0, :, :, 44:].mean()) == pytest.approx(0.08, rel=0.1)


# ---------------------------------------------------------------------------------------------------------------
# Gaussian kinds
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gaussian_clipped", "gaussian_float", "gaussian_16bit"])
def test_white_kinds_match_their_constant_map(kind: str) -> None:
    clean = flat([0.5] * 6)
    result = synthesize_batch(clean, only(kind, sigma_min=5.0, sigma_max=30.0), seeded(4))
    assert result.kinds == [kind] * 6
    torch.testing.assert_close(result.target, clean, rtol=0, atol=0)
    sigmas = result.maps[:, 0, 0, 0]
    assert torch.all((sigmas >= 5 / 255) & (sigmas <= 30 / 255))
    assert float(sigmas.max() - sigmas.min()) > 5 / 255  # each patch has its own sigma
    torch.testing.assert_close(result.maps, sigmas.view(-1, 1, 1, 1).expand(-1, 2, 64, 64).contiguous())
    measured = (result.noisy - clean).std(dim=(1, 2, 3))
    torch.testing.assert_close(measured, sigmas, rtol=0.04, atol=0)


def test_clipped_kind_is_a_saved_8bit_photo() -> None:
    clean = flat([0.03, 0.5, 0.97])
    noisy = synthesize_batch(clean, only("gaussian_clipped", sigma_min=40.0, sigma_max=60.0), seeded(5)).noisy
    levels = noisy * 255
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-3)
    assert float(noisy.min()) == 0.0 and float(noisy.max()) == 1.0  # clipped at black and white


def test_16bit_kind_is_on_16bit_levels() -> None:
    clean = flat([0.02, 0.5], size=32)
    noisy = synthesize_batch(clean, only("gaussian_16bit", sigma_min=20.0, sigma_max=40.0), seeded(6)).noisy
    levels = noisy.double() * 65535
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=0.02)
    assert float(noisy.min()) == 0.0 and float(noisy.max()) <= 1.0
    assert len(torch.unique(noisy[1])) > 1000  # far finer than 8-bit levels


def test_float_kind_is_neither_rounded_nor_clipped() -> None:
    clean = flat([0.01, 0.01], size=32)
    noisy = synthesize_batch(clean, only("gaussian_float", sigma_min=50.0, sigma_max=75.0), seeded(7)).noisy
    assert float(noisy.min()) < -0.1  # a near-black patch at high sigma goes well below 0
    levels = noisy * 255
    assert float((levels - levels.round()).abs().max()) > 0.1


def test_varying_kind_map_is_the_true_local_sigma() -> None:
    clean = flat([0.5] * 4)
    result = synthesize_batch(clean, only("gaussian_varying", sigma_min=5.0, sigma_max=60.0), seeded(8))
    maps = result.maps
    torch.testing.assert_close(maps[:, 0], maps[:, 1])
    spans = maps[:, 0].amax(dim=(1, 2)) - maps[:, 0].amin(dim=(1, 2))
    assert torch.all(spans > 0) and float(spans.max()) > 10 / 255  # not a constant map
    noise = result.noisy - clean
    # Divided by its map the noise is unit white noise: the map is the exact per-pixel sigma...
    normalised = noise / maps[:, :1]
    assert float(normalised.std()) == pytest.approx(1.0, rel=0.02)
    # ... so where the map is high the noise is strong, and where it is low it is weak, in proportion.
    per_pixel = maps[:, :1].expand_as(noise)
    for low, high in ((0.0, 0.33), (0.67, 1.0)):
        lower, upper = torch.quantile(per_pixel.flatten(), torch.tensor([low, high]))
        band = (per_pixel >= lower) & (per_pixel <= upper)
        measured = float(noise[band].pow(2).mean().sqrt())
        expected = float(per_pixel[band].pow(2).mean().sqrt())
        assert measured == pytest.approx(expected, rel=0.04)
    # The local empirical std agrees with it too.
    local = local_noise_maps(noise)
    assert float(((local - maps).abs() / maps).mean()) < 0.12


def test_varying_kind_can_follow_brightness() -> None:
    y, x = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    clean = (0.2 + 0.6 * x).expand(8, 3, 32, 32).contiguous()
    maps = synthesize_batch(clean, only("gaussian_varying", sigma_min=5.0, sigma_max=60.0), seeded(9)).maps
    # With a ramp for brightness the field varies along x in every patch.
    along_x = maps[:, 0].mean(dim=1)
    assert torch.all(along_x.amax(dim=1) - along_x.amin(dim=1) > 0)


# ---------------------------------------------------------------------------------------------------------------
# Camera kind
# ---------------------------------------------------------------------------------------------------------------


def linearise(srgb: torch.Tensor) -> torch.Tensor:
    """Undo the pipeline's tone curve and gamma (what remains, the colour matrix, is linear)."""
    return (0.5 - torch.sin(torch.asin(1.0 - 2.0 * srgb.clamp(0, 1)) / 3.0)).clamp_min(1e-8) ** 2.2


def test_camera_noise_is_signal_dependent() -> None:
    mix = only("camera", shot_noise_min=1e-3, shot_noise_max=1e-3, **PLAIN_CAMERA)
    stds, linear_variances = [], []
    for level in (0.3, 0.5, 0.7, 0.9):
        # The same seed draws the same cameras and noise levels for every brightness.
        result = synthesize_batch(flat([level] * 4, size=48), mix, seeded(10))
        stds.append(float((result.noisy - result.target).std()))
        linear_variances.append(float((linearise(result.noisy) - linearise(result.target)).var()))
    # In linear space the variance grows with the signal (shot noise) ...
    assert linear_variances[0] < linear_variances[1] < linear_variances[2]
    assert linear_variances[2] > 2.0 * linear_variances[0]
    # ... and in the developed sRGB image the std depends on brightness (the tone curve flattens highlights).
    assert stds[1] > 1.25 * stds[3]


def test_camera_noise_is_correlated_and_coloured() -> None:
    clean = scene(count=6, size=48)
    camera = synthesize_batch(clean, only("camera", shot_noise_min=3e-3, **PLAIN_CAMERA), seeded(11))
    white = synthesize_batch(clean, only("gaussian_float", sigma_min=10.0, sigma_max=20.0), seeded(11))
    assert neighbour_correlation(camera.noisy - camera.target) > 0.3  # demosaicing spreads each photosite
    assert abs(neighbour_correlation(white.noisy - white.target)) < 0.05
    assert float(camera.maps[:, 1].mean()) > 0.5 * float(camera.maps[:, 0].mean())  # colour noise present
    torch.testing.assert_close(camera.maps, local_noise_maps(camera.noisy - camera.target))
    assert float((camera.target - clean).abs().mean()) < 0.02  # the developed clean patch is close to the input


@pytest.mark.parametrize("channels", [1, 3])
def test_camera_without_noise_gives_the_target(channels: int) -> None:
    # Smoothing and sharpening act on the noisy and the clean patch alike; only the noise (and JPEG) differ.
    mix = only("camera", shot_noise_min=0.0, shot_noise_max=0.0, jpeg_probability=0.0,
               smoothing_probability=1.0, sharpening_probability=1.0)
    result = synthesize_batch(scene(channels=channels), mix, seeded(12))
    torch.testing.assert_close(result.noisy, result.target, rtol=0, atol=1e-6)
    assert float(result.maps.max()) < 1e-5
    assert not torch.equal(result.target, scene(channels=channels))  # the target is the developed patch


@pytest.mark.parametrize("channels", [1, 3])
def test_camera_jpeg_output_is_on_8bit_levels(channels: int) -> None:
    clean = scene(channels=channels)
    result = synthesize_batch(clean, only("camera", jpeg_probability=1.0), seeded(13))
    levels = result.noisy * 255
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-3)
    plain = synthesize_batch(clean, only("camera", jpeg_probability=0.0), seeded(13))
    torch.testing.assert_close(result.target, plain.target)  # the target never goes through JPEG
    assert not torch.allclose(result.noisy, plain.noisy, atol=1 / 255)


def test_camera_grey_noise_is_grey() -> None:
    result = synthesize_batch(scene(channels=1, size=48), only("camera", **PLAIN_CAMERA), seeded(14))
    assert result.noisy.shape == (4, 1, 48, 48)
    torch.testing.assert_close(result.maps[:, 0], result.maps[:, 1])
    assert neighbour_correlation(result.noisy - result.target) > 0.3


def test_camera_default_range_is_realistic_in_mid_grey() -> None:
    """At the strongest the developed noise is 20-50 levels of 255 in mid-grey; at the weakest about 1."""
    clean = flat([0.5] * 8, size=32)
    for shot, low, high in ((1.2e-2, 20.0, 50.0), (SynthesisMix().shot_noise_min, 0.5, 2.0)):
        mix = only("camera", shot_noise_min=shot, shot_noise_max=shot, **PLAIN_CAMERA)
        result = synthesize_batch(clean, mix, seeded(15))
        level = float((result.noisy - result.target).std(dim=(1, 2, 3)).median()) * 255
        assert low < level < high


# ---------------------------------------------------------------------------------------------------------------
# The batch
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_every_kind_shapes_and_values(kind: str, channels: int) -> None:
    clean = scene(count=3, channels=channels).double()  # any float dtype comes back float32
    result = synthesize_batch(clean, only(kind), seeded(16))
    assert isinstance(result, SynthesisResult) and result.kinds == [kind] * 3
    assert result.noisy.shape == result.target.shape == (3, channels, 32, 32)
    assert result.maps.shape == (3, 2, 32, 32)
    for tensor in (result.noisy, result.target, result.maps):
        assert tensor.dtype == torch.float32 and bool(torch.isfinite(tensor).all())
    assert float(result.maps.min()) >= 0
    assert not torch.equal(result.noisy, result.target)


def test_same_seed_same_batch_and_other_seed_other_batch() -> None:
    clean = scene(count=10)
    first = synthesize_batch(clean, SynthesisMix(), seeded(17))
    again = synthesize_batch(clean, SynthesisMix(), seeded(17))
    assert first.kinds == again.kinds and len(set(first.kinds)) > 1
    for name in ("noisy", "target", "maps"):
        assert torch.equal(getattr(first, name), getattr(again, name))
    other = synthesize_batch(clean, SynthesisMix(), seeded(18))
    assert not torch.equal(first.noisy, other.noisy)


def test_kinds_are_drawn_by_weight() -> None:
    clean = torch.full((400, 1, 4, 4), 0.5)
    mix = SynthesisMix(weights={"gaussian_float": 1.0, "camera": 3.0, "gaussian_clipped": 0.0}, **PLAIN_CAMERA)
    kinds = synthesize_batch(clean, mix, seeded(19)).kinds
    assert set(kinds) == {"gaussian_float", "camera"}
    assert kinds.count("camera") / len(kinds) == pytest.approx(0.75, abs=0.07)


def test_bad_batches_are_refused() -> None:
    with pytest.raises(DenoiserError):
        synthesize_batch(torch.zeros(2, 2, 8, 8), SynthesisMix(), seeded(0))
    with pytest.raises(DenoiserError):
        synthesize_batch(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), SynthesisMix(), seeded(0))
    with pytest.raises(DenoiserError):
        synthesize_batch(torch.zeros(2, 3, 8, 8), SynthesisMix(), None)  # type: ignore[arg-type]


def test_validate() -> None:
    SynthesisMix().validate()
    with pytest.raises(UnknownNameError):
        SynthesisMix(weights={"speckle": 1.0}).validate()
    bad = [
        {"weights": {}},
        {"weights": {"camera": -1.0}},
        {"weights": {"camera": 0.0}},
        {"sigma_min": 30.0, "sigma_max": 10.0},
        {"sigma_max": 300.0},
        {"shot_noise_min": 0.0},
        {"shot_noise_min": 0.1, "shot_noise_max": 0.01},
        {"jpeg_probability": 1.5},
        {"jpeg_quality_min": 99, "jpeg_quality_max": 90},
        {"jpeg_quality_max": 101},
        {"smoothing_probability": -0.1},
        {"sharpening_amount_max": 5.0},
    ]
    for fields in bad:
        with pytest.raises(ConfigError):
            SynthesisMix(**fields).validate()
    with pytest.raises(ConfigError):
        synthesize_batch(flat([0.5], size=8), SynthesisMix(sigma_min=-1.0), seeded(0))


def test_mix_json_round_trip() -> None:
    mix = SynthesisMix(weights={"camera": 2.0, "gaussian_float": 1.0}, jpeg_probability=0.5)
    assert SynthesisMix.from_json(mix.to_json()) == mix
    with pytest.raises(UnknownNameError):
        SynthesisMix.from_dict({"weights": {"blur": 1.0}})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batch_stays_on_the_device_and_is_deterministic() -> None:
    clean = scene(count=8).cuda()
    mix = SynthesisMix(jpeg_probability=1.0)
    first = synthesize_batch(clean, mix, torch.Generator(device="cuda").manual_seed(20))
    again = synthesize_batch(clean, mix, torch.Generator(device="cuda").manual_seed(20))
    for name in ("noisy", "target", "maps"):
        assert getattr(first, name).device.type == "cuda"
        assert torch.equal(getattr(first, name), getattr(again, name))
    camera = [i for i, kind in enumerate(first.kinds) if kind == "camera"]
    levels = first.noisy[camera] * 255
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-3)
    with pytest.raises(DenoiserError):
        synthesize_batch(clean, mix, seeded(0))  # a CPU generator for CUDA data
