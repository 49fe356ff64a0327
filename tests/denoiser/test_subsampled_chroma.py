"""Tests of auto on photos whose colour was subsampled (4:2:0 and 4:2:2 JPEGs, HEIC, AVIF): their noise is read in
the luminance, and photos whose chroma holds its noise (PNG, 4:4:4 JPEG, 16-bit) keep their estimate bit for bit."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, features

import denoiser.estimator as estimator_module
import denoiser.strength as strength_module
from denoiser.chroma import (
    CLEAN_LUMINANCE,
    LUMINANCE_ONLY_MAP,
    SUBSAMPLED_SHARE,
    ChromaCheck,
    check_chroma,
    luminance_only_levels,
)
from denoiser.noise import MAX_SIGMA
from denoiser.noise_estimation import patch_matrix, pca_noise, weak_texture_noise
from denoiser.strength import Strength, estimate_noise_map, levels_for

SIGMA = 20.0


def colour_scene(size: tuple[int, int] = (128, 160)) -> np.ndarray:
    """A clean colour photo (float, 0-255): gradients, a disc, a stripe of hue and a dark corner."""
    y, x = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float64)
    red = 60 + 0.6 * x + 40 * (np.hypot(x - 50, y - 60) < 30)
    green = 70 + 0.5 * y + 30 * np.sin(x / 11.0)
    blue = 90 + 0.3 * (x + y) - 40 * ((x > 100) & (y > 70))
    return np.stack([red, green, blue], axis=2)


def noisy_photo(sigma: float = SIGMA, seed: int = 0) -> np.ndarray:
    """The scene with white noise of ``sigma`` in every channel, rounded and clipped to uint8."""
    clean = colour_scene()
    noisy = clean + np.random.default_rng(seed).normal(0.0, sigma, clean.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def through_jpeg(pixels: np.ndarray, subsampling: int, quality: int = 92) -> np.ndarray:
    """Saved as a JPEG by Pillow (subsampling 0: 4:4:4, 1: 4:2:2, 2: 4:2:0) and opened again."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality, subsampling=subsampling)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def plain_420(pixels: np.ndarray) -> np.ndarray:
    """Chroma subsampling alone, no codec: YCbCr, chroma averaged over 2 x 2 and interpolated back."""
    ycc = cv2.cvtColor(pixels, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    height, width = pixels.shape[:2]
    small = cv2.resize(ycc[:, :, 1:], (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    ycc[:, :, 1:] = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(np.clip(np.round(ycc), 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2RGB)


def through_avif(pixels: np.ndarray) -> np.ndarray:
    """Saved as an AVIF by Pillow (4:2:0, its default) and opened again."""
    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF support")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "AVIF", quality=90)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def through_heic(pixels: np.ndarray) -> np.ndarray:
    """Saved as a HEIC by pillow-heif (4:2:0, its default) and opened again."""
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "HEIF", quality=90)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


SUBSAMPLED = {
    "jpeg 4:2:0": lambda pixels: through_jpeg(pixels, 2),
    "jpeg 4:2:2": lambda pixels: through_jpeg(pixels, 1),
    "jpeg 4:2:0 quality 75": lambda pixels: through_jpeg(pixels, 2, 75),
    "subsampling alone": plain_420,
    "avif": through_avif,
    "heic": through_heic,
}


def without_the_chroma_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Auto as it was before subsampled chroma was looked for."""
    monkeypatch.setattr(strength_module, "check_chroma", lambda _pixels: None)


@pytest.mark.parametrize("codec", SUBSAMPLED)
def test_auto_reads_the_noise_of_a_photo_whose_chroma_was_subsampled(codec: str) -> None:
    # The bug: sigma 20 saved as a 4:2:0 JPEG read 0.4 (luminance) where the same photo as a PNG read 20.
    photo = SUBSAMPLED[codec](noisy_photo())
    estimate = estimate_noise_map(photo)
    assert 0.9 * SIGMA < estimate.luminance < 1.6 * SIGMA
    assert 0.7 * SIGMA < estimate.color < 1.3 * SIGMA
    assert estimate.method == "network" and estimate.subsampled and "colour subsampled" in estimate.summary()


@pytest.mark.parametrize("codec", ["jpeg 4:2:0", "subsampling alone"])
def test_without_an_estimator_the_pca_estimate_reads_it_too(monkeypatch: pytest.MonkeyPatch, codec: str) -> None:
    monkeypatch.setattr(estimator_module, "bundled_estimator", lambda: None)
    estimate = estimate_noise_map(SUBSAMPLED[codec](noisy_photo()))
    assert 0.9 * SIGMA < estimate.luminance < 1.6 * SIGMA
    assert estimate.method == "pca" and estimate.subsampled and estimate.levels.shape == (1, 1, 2)


def test_the_subsampled_levels_only_ever_raise_the_readers_map(monkeypatch: pytest.MonkeyPatch) -> None:
    photo = through_jpeg(noisy_photo(), 2)
    check = check_chroma(photo)
    assert check is not None and check.subsampled
    before = estimate_noise_map(photo).levels
    without_the_chroma_check(monkeypatch)
    reader = estimate_noise_map(photo).levels
    np.testing.assert_array_equal(before, np.maximum(reader, luminance_only_levels(check)))
    noise = np.sqrt(check.luminance_noise**2 - CLEAN_LUMINANCE**2)  # less what a clean photo reads
    np.testing.assert_allclose(luminance_only_levels(check)[0, 0], np.array(LUMINANCE_ONLY_MAP) * noise, rtol=1e-5)


def not_subsampled_versions() -> dict[str, np.ndarray]:
    noisy = noisy_photo()
    noisy_16 = np.clip(np.round(colour_scene() * 257 + np.random.default_rng(1).normal(0, SIGMA * 257,
                                                                                      noisy.shape)), 0, 65535)
    return {"png (uint8)": noisy, "jpeg 4:4:4": through_jpeg(noisy, 0), "16-bit": noisy_16.astype(np.uint16),
            "float": noisy.astype(np.float32) / 255, "low noise": noisy_photo(4.0), "clean": noisy_photo(0.0),
            "clean jpeg 4:2:0": through_jpeg(noisy_photo(0.0), 2)}


@pytest.mark.parametrize("reader", ["network", "pca"])
def test_photos_whose_chroma_holds_its_noise_keep_their_estimate_bit_for_bit(monkeypatch: pytest.MonkeyPatch,
                                                                          reader: str) -> None:
    if reader == "pca":
        monkeypatch.setattr(estimator_module, "bundled_estimator", lambda: None)
    photos = not_subsampled_versions()
    now = {name: estimate_noise_map(pixels) for name, pixels in photos.items()}
    without_the_chroma_check(monkeypatch)
    for name, pixels in photos.items():
        assert not now[name].subsampled, name
        np.testing.assert_array_equal(now[name].levels, estimate_noise_map(pixels).levels, err_msg=name)


def test_white_noise_reads_in_luminance_and_chroma_as_theory_says() -> None:
    check = check_chroma(noisy_photo())
    assert check is not None and not check.subsampled
    assert check.luminance_noise == pytest.approx(SIGMA / np.sqrt(3), rel=0.1)  # the channels' mean
    assert check.chroma_noise == pytest.approx(SIGMA, rel=0.05)
    subsampled = check_chroma(plain_420(noisy_photo()))
    assert subsampled is not None and subsampled.chroma_noise < 0.1 * SIGMA
    assert subsampled.luminance_noise == pytest.approx(0.67 * SIGMA, rel=0.1)  # Rec. 601 luma's share


def test_the_check_reads_alike_whatever_the_bit_depth() -> None:
    photo = plain_420(noisy_photo())
    readings = [check_chroma(pixels) for pixels in (photo, photo.astype(np.uint16) * 257,
                                                     photo.astype(np.float32) / 255)]
    assert all(r is not None and r.subsampled for r in readings)
    for reading in readings[1:]:
        assert reading.luminance_noise == pytest.approx(readings[0].luminance_noise, rel=1e-4)
        assert reading.chroma_noise == pytest.approx(readings[0].chroma_noise, rel=1e-4, abs=1e-4)


def test_subsampled_is_a_share_of_the_luminance_noise_and_a_clean_ones_reading_raises_nothing() -> None:
    assert ChromaCheck(10.0, SUBSAMPLED_SHARE * 10.0 - 0.01).subsampled
    assert not ChromaCheck(10.0, SUBSAMPLED_SHARE * 10.0).subsampled
    assert luminance_only_levels(ChromaCheck(10.0, SUBSAMPLED_SHARE * 10.0)) is None
    assert not ChromaCheck(0.0, 0.0).subsampled
    assert luminance_only_levels(ChromaCheck(CLEAN_LUMINANCE, 0.0)) is None  # grain and texture, not noise
    assert luminance_only_levels(ChromaCheck(CLEAN_LUMINANCE + 0.5, 0.0)) is not None
    top = luminance_only_levels(ChromaCheck(200.0, 0.0))
    assert top is not None and top.shape == (1, 1, 2) and top.max() == pytest.approx(MAX_SIGMA)


def test_grey_and_tiny_photos_are_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_chroma(noisy_photo()[:20, :20]) is None  # too small for 7 x 7 colour patches
    assert not estimate_noise_map(through_jpeg(noisy_photo(), 2)[:20, :20]).subsampled

    def refuse(_pixels: np.ndarray) -> None:
        raise AssertionError("a grey photo's chroma was checked")

    monkeypatch.setattr(strength_module, "check_chroma", refuse)
    grey = np.repeat(noisy_photo()[:, :, 1:2], 3, axis=2)
    assert estimate_noise_map(grey).grey is not None


def test_auto_strength_denoises_a_subsampled_photo_at_the_raised_levels() -> None:
    photo = through_jpeg(noisy_photo(), 2)
    levels, estimate = levels_for(photo, Strength(amount=0.5))
    assert estimate is not None and 0.45 * SIGMA < float(np.median(levels[:, :, 0])) < 0.8 * SIGMA
    np.testing.assert_allclose(levels, 0.5 * estimate.levels, rtol=1e-6)


@pytest.mark.parametrize("sigma", [0.0, 5.0, 10.0])
def test_weak_texture_noise_is_not_fooled_by_fine_grey_texture(sigma: float) -> None:
    # Half the photo fine texture (blurred random field, std 30), half a smooth gradient: the plain PCA estimate of
    # one channel reads the texture as noise (8.7 with no noise at all), the weak-textured patches do not.
    rng = np.random.default_rng(1)
    field = cv2.GaussianBlur(rng.normal(0.0, 1.0, (128, 160)), (0, 0), 0.7)
    x = np.mgrid[0:128, 0:160][1].astype(np.float64)
    textured = 100 + 0.3 * x + np.where(x < 80, 30 * field / field.std(), 0.0)
    grey = textured + np.random.default_rng(2).normal(0.0, sigma, textured.shape)
    patches = patch_matrix(grey[:, :, None], (7, 7), 60000, 0)
    assert pca_noise(patches) > sigma + 2.0
    assert weak_texture_noise(patches.reshape(-1, 7, 7)) == pytest.approx(sigma, abs=0.3)
