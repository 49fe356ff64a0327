"""Property-based tests of the readers of untrusted files: images (:func:`~denoiser.io.read_image`) and model files
(:func:`~denoiser.modelfile.load_model_file`).

Given random bytes, or valid files with a few bytes changed, inserted or cut, or model descriptions with odd
values, they either read the file or raise the project's typed error naming it (:class:`ImageReadError`,
:class:`ModelLoadError`): never another exception, never a hang, never gigabytes of memory. The examples are
derandomized (the same ones on every run) and few, so the whole file takes seconds (:data:`SEARCH_EXAMPLES` runs
more); ``fuzz/`` holds atheris targets for running the same checks for hours (see ``docs/fuzzing.md``). The image
seeds are the atheris target's: PNG, JPEG, BMP, WebP, TIFF (8, 16 and 32-bit float), HEIC, AVIF and DNG, each
damaged and read under its own extension (camera RAW is recognised by it), and made into a thumbnail too.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import resource
import signal
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from memory_limits import address_space_headroom
from PIL import Image as PILImage
from safetensors.torch import load as safetensors_to_tensors
from safetensors.torch import save as safetensors_to_bytes

from denoiser.errors import ImageReadError, ModelLoadError
from denoiser.io import read_image, read_thumbnail
from denoiser.io.formats import format_info
from denoiser.modelfile import HEADER_KEY, ModelInfo, load_model_file, read_info, save_model, weights_bytes
from denoiser.models import create_model, families

SEARCH_EXAMPLES = int(os.environ.get("DENOISER_FUZZ_EXAMPLES") or 0)
"""To search harder for a while (never in CI): ``DENOISER_FUZZ_EXAMPLES=2000 pytest tests/denoiser/test_fuzz.py``
runs that many examples per property, new ones on every run (a failure prints how to reproduce it)."""
FUZZ = settings(
    max_examples=SEARCH_EXAMPLES or 100,
    deadline=None,  # the first example pays for imports and warm-up; hangs are caught by time_limit instead
    derandomize=not SEARCH_EXAMPLES,  # the same examples on every run: CI stays stable
    database=None,  # and nothing is written into the working tree
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
DAMAGED_IMAGES = settings(FUZZ, max_examples=SEARCH_EXAMPLES or 200)
"""For damaged image seeds: twice the examples, since there are seeds of 17 kinds (about 12 changed files each)."""
SECONDS_PER_EXAMPLE = 20
"""Far more than any example takes (milliseconds): only a hang reaches it."""
MEMORY_GROWTH_LIMIT = 400 * 1024**2
"""How much the process's peak memory may grow over a whole fuzz test."""
PIXEL_LIMIT = 4_000_000
"""Pillow's decompression-bomb limit during the image fuzz: a tampered header may ask for this many pixels, not
the 89 million of the default, so that memory stays small while the guard itself is still exercised."""
THUMBNAIL_SIDE = 160
"""The longest side of the thumbnails checked: what the folder pane asks for."""


class Hang(Exception):
    """An example ran past :data:`SECONDS_PER_EXAMPLE`."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` inside the block after ``seconds`` (where SIGALRM exists; elsewhere no limit)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@pytest.fixture
def bounded_memory() -> Iterator[None]:
    """Fail the test when the process's peak memory grew by more than :data:`MEMORY_GROWTH_LIMIT` during it."""
    before = peak_rss_bytes()
    yield
    grown = peak_rss_bytes() - before
    assert grown < MEMORY_GROWTH_LIMIT, f"peak memory grew by {grown / 1024**2:.0f} MB"


# --- mutations ---------------------------------------------------------------------------------------------------

_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
"""Values written over a file's fields: the edges where sizes and counts overflow or turn negative."""


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    """One of ``seeds`` with 1 to 6 random changes: bits flipped, bytes set, inserted or deleted, a 2- or 4-byte
    field overwritten with an edge value, or the file cut short."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "field", "truncate"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "field":
            width = draw(st.sampled_from([2, 4]))
            value = draw(st.sampled_from(_INTERESTING)) % (1 << (8 * width))
            data[at : at + width] = value.to_bytes(width, draw(st.sampled_from(["big", "little"])))
        else:
            del data[at:]
    return bytes(data)


# --- image reader -------------------------------------------------------------------------------------------------

FUZZ_FOLDER = Path(__file__).resolve().parents[2] / "fuzz"


def fuzz_target(name: str) -> ModuleType:
    """The atheris target ``fuzz/NAME.py`` as a module (importing it needs no atheris)."""
    spec = importlib.util.spec_from_file_location(f"fuzz_{name}", FUZZ_FOLDER / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=1)
def image_seeds() -> dict[str, bytes]:
    """Small valid files of every format and bit depth the reader takes, by name (its extension is the one to read
    it under: camera RAW is known by it): the atheris target's seeds, so that both fuzz the same files."""
    return fuzz_target("fuzz_read_image").seeds()


@st.composite
def mutated_files(draw: st.DrawFn, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """The extension of one of ``seeds`` and its bytes after :func:`mutated`'s changes."""
    name = draw(st.sampled_from(sorted(seeds)))
    return Path(name).suffix, draw(mutated((seeds[name],)))


def check_read_image(path: Path, data: bytes) -> None:
    """``read_image`` on ``data`` gives an upright image (8 or 16-bit, or finite float) or an ImageReadError
    naming the file."""
    path.write_bytes(data)
    try:
        with time_limit(SECONDS_PER_EXAMPLE), address_space_headroom(1024**3):
            image = read_image(path)
    except ImageReadError as err:
        assert err.path == path and str(path) in str(err)
    else:
        assert image.pixels.ndim == 3 and image.pixels.shape[2] in (1, 3, 4)
        assert image.pixels.dtype in (np.uint8, np.uint16, np.float32)
        assert image.pixels.dtype != np.float32 or np.isfinite(image.pixels).all()
        assert image.pixels.shape[0] * image.pixels.shape[1] <= PIXEL_LIMIT


def check_read_thumbnail(path: Path, data: bytes) -> None:
    """``read_thumbnail`` on ``data`` (what the folder pane makes of every file in a folder) gives a uint8 RGB
    preview at most :data:`THUMBNAIL_SIDE` a side, or an ImageReadError naming the file."""
    path.write_bytes(data)
    try:
        with time_limit(SECONDS_PER_EXAMPLE), address_space_headroom(1024**3):
            thumbnail = read_thumbnail(path, THUMBNAIL_SIDE)
    except ImageReadError as err:
        assert err.path == path and str(path) in str(err)
    else:
        assert thumbnail.dtype == np.uint8 and thumbnail.ndim == 3 and thumbnail.shape[2] == 3
        assert 1 <= min(thumbnail.shape[:2]) and max(thumbnail.shape[:2]) <= THUMBNAIL_SIDE


@pytest.fixture
def small_pixel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", PIXEL_LIMIT)


# Formats and bit depths the seeds must cover (where the format's library is installed): every reader reached.
SEED_FORMATS = {"HEIF": {8, 16}, "AVIF": {8}, "TIFF": {8, 16, 32}, "RAW": {16}}


def test_the_image_seeds_are_valid(tmp_path: Path) -> None:
    found: dict[str, set[int]] = {}
    for name, data in image_seeds().items():
        path = tmp_path / name
        path.write_bytes(data)
        image = read_image(path)
        assert image.pixels.shape[:2] in ((6, 8), (8, 6), (32, 24)), name
        thumbnail = read_thumbnail(path)  # the picture shrunk, or a RAW's embedded preview (half its size here)
        assert thumbnail.shape[2] == 3 and thumbnail.shape[0] * image.width == thumbnail.shape[1] * image.height, name
        found.setdefault(image.format, set()).add(image.bit_depth)
    for fmt, depths in SEED_FORMATS.items():
        if format_info(fmt).available:
            assert depths <= found.get(fmt, set()), fmt


def test_the_dng_seed_has_what_a_camera_writes(tmp_path: Path) -> None:
    """The hand-written DNG seed reaches the RAW reader's metadata and preview code: its EXIF and orientation are
    read, and its thumbnail is the embedded preview (half the picture's size), not a development."""
    pytest.importorskip("rawpy")
    path = tmp_path / "seed.dng"
    path.write_bytes(image_seeds()["mosaic.dng"])
    image = read_image(path)
    exif = PILImage.Exif()
    exif.load(image.exif)
    assert (exif[0x010F], exif[0x0110], exif.get_ifd(0x8769)[0x8827]) == ("Fuzzmaker", "FM-1", 1600)
    assert image.pixels.shape == (32, 24, 3)  # a 24 x 32 sensor, turned by its orientation 6
    assert read_thumbnail(path).shape == (16, 12, 3)


# Pillow warns about some damage it reads past (corrupt EXIF, tags beyond the file): not what these tests are about.
@pytest.mark.filterwarnings("ignore::UserWarning")
@FUZZ
@given(data=st.binary(max_size=1024), suffix=st.sampled_from([".png", ".dng"]))
@example(data=b"", suffix=".png")
@example(data=b"", suffix=".dng")
@example(data=b"\x89PNG\r\n\x1a\n", suffix=".png")
@example(data=b"II*\x00" + b"\xff" * 60, suffix=".png")
@example(data=b"II*\x00" + b"\xff" * 60, suffix=".dng")
@example(data=b"\x00\x00\x00\x18ftypheic" + b"\x00" * 12, suffix=".png")
@example(data=b"\x00\x00\x00\x18ftypavif" + b"\x00" * 12, suffix=".png")
def test_random_bytes_never_raise_anything_but_image_read_error(tmp_path: Path, small_pixel_limit: None,
                                                                bounded_memory: None, data: bytes,
                                                                suffix: str) -> None:
    """Any file, under a name the content decides the format of (.png) or a camera RAW name (.dng)."""
    check_read_image(tmp_path / f"random{suffix}", data)


def with_tiff_field(data: bytes, tag: int, value: int) -> bytes:
    """The little-endian TIFF ``data`` with the one-number entry ``tag`` (SHORT or LONG) of its first directory set
    to ``value``: what a damaged header holds."""
    changed = bytearray(data)
    (first,) = struct.unpack_from("<I", changed, 4)
    (count,) = struct.unpack_from("<H", changed, first)
    for at in range(first + 2, first + 2 + 12 * count, 12):
        entry, kind = struct.unpack_from("<HH", changed, at)
        if entry == tag:
            struct.pack_into("<I" if kind == 4 else "<H", changed, at + 8, value)
            return bytes(changed)
    raise KeyError(tag)


IMAGE_WIDTH, IMAGE_LENGTH, ROWS_PER_STRIP = 256, 257, 278


def _float_tiff(*fields: tuple[int, int]) -> bytes:
    data = image_seeds()["float-rgb.tif"]  # 8 x 6 pixels in one strip
    for tag, value in fields:
        data = with_tiff_field(data, tag, value)
    return data


FOUND_FLOAT_TIFFS = {
    # A float TIFF saying it is 0 pixels wide or high: tifffile decoded an empty 1-D array, which failed with a
    # ValueError where the pixels were turned upright.
    "no width": (_float_tiff((IMAGE_WIDTH, 0)), r"it says its picture is 0 x 6 pixels"),
    "no height": (_float_tiff((IMAGE_LENGTH, 0)), r"it says its picture is 8 x 0 pixels"),
    # One strip listed where its height needs 400,000: tifffile went through every missing one (a 1 kB file asking
    # for a million strips kept read_image and read_thumbnail busy for 9 s each and took 250 MB; at Pillow's
    # default pixel limit, minutes and gigabytes).
    "missing strips": (_float_tiff((IMAGE_LENGTH, 400_000), (ROWS_PER_STRIP, 1)),
                       r"it lists 1 of the 400000 strips its picture needs"),
}
"""Damaged float TIFFs the fuzz found (issue 15), and what the reader now says about them."""


def with_found_float_tiffs(test: Callable) -> Callable:
    """``test`` with :data:`FOUND_FLOAT_TIFFS` as explicit examples of its ``file`` argument."""
    for data, _message in FOUND_FLOAT_TIFFS.values():
        test = example(file=(".tif", data))(test)
    return test


@pytest.mark.parametrize("finding", sorted(FOUND_FLOAT_TIFFS))
def test_float_tiffs_the_fuzz_found_are_refused_as_damaged(tmp_path: Path, finding: str) -> None:
    data, message = FOUND_FLOAT_TIFFS[finding]
    path = tmp_path / "found.tif"
    path.write_bytes(data)
    for read in (read_image, read_thumbnail):
        with time_limit(5), pytest.raises(ImageReadError, match=f"damaged float TIFF: {message}") as caught:
            read(path)
        assert caught.value.path == path


@pytest.mark.filterwarnings("ignore::UserWarning")
@DAMAGED_IMAGES
@given(file=mutated_files(image_seeds()))
@with_found_float_tiffs
def test_damaged_images_never_raise_anything_but_image_read_error(tmp_path: Path, small_pixel_limit: None,
                                                                  bounded_memory: None, file: tuple[str, bytes]
                                                                  ) -> None:
    suffix, data = file
    check_read_image(tmp_path / f"damaged{suffix}", data)


@pytest.mark.filterwarnings("ignore::UserWarning")
@DAMAGED_IMAGES
@given(file=mutated_files(image_seeds()))
@with_found_float_tiffs
def test_thumbnails_of_damaged_images_are_rgb_or_image_read_error(tmp_path: Path, small_pixel_limit: None,
                                                                  bounded_memory: None, file: tuple[str, bytes]
                                                                  ) -> None:
    suffix, data = file
    check_read_thumbnail(tmp_path / f"damaged{suffix}", data)


# --- model loader -------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def model_seed() -> tuple[bytes, bytes]:
    """A tiny valid model file (about 4 kB) and its JSON description."""
    torch.manual_seed(0)
    model = create_model("unet", {"widths": [4, 8], "blocks": 0})
    info = ModelInfo(name="seed", family="unet", config=model.config.to_dict(), description="fuzz seed")
    tensors = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    return weights_bytes(tensors, info), (info.to_json_text() + "\n").encode()


def check_load_model(path: Path, weights: bytes, description: bytes | None) -> None:
    """``read_info`` and ``load_model_file`` on these bytes (and this sidecar JSON, if any) give a description and a
    model with finite weights, or a ModelLoadError naming the file or its JSON."""
    path.write_bytes(weights)
    sidecar = path.with_suffix(".json")
    sidecar.unlink(missing_ok=True)
    if description is not None:
        sidecar.write_bytes(description)
    try:  # what listing the library and `denoiser models info` read
        with time_limit(SECONDS_PER_EXAMPLE):
            read_info(path)
    except ModelLoadError as err:
        assert err.path in (path, sidecar) and str(err.path) in str(err)
    try:
        with time_limit(SECONDS_PER_EXAMPLE), address_space_headroom(1024**3):
            model, info = load_model_file(path)
    except ModelLoadError as err:
        assert err.path in (path, sidecar) and str(err.path) in str(err)
    else:
        assert info.family in families()
        assert all(torch.isfinite(value).all() for value in model.state_dict().values() if value.is_floating_point())


def test_the_model_seed_loads(tmp_path: Path) -> None:
    weights, description = model_seed()
    (tmp_path / "m.safetensors").write_bytes(weights)
    load_model_file(tmp_path / "m.safetensors")
    (tmp_path / "m.json").write_bytes(description)
    load_model_file(tmp_path / "m.safetensors")


@FUZZ
@given(data=st.binary(max_size=1024))
@example(data=b"")
@example(data=(2**64 - 1).to_bytes(8, "little"))
@example(data=(2).to_bytes(8, "little") + b"{}")
@example(data=(2).to_bytes(8, "little") + b"[]")
def test_random_bytes_as_a_model_never_raise_anything_but_model_load_error(tmp_path: Path, bounded_memory: None,
                                                                           data: bytes) -> None:
    check_load_model(tmp_path / "random.safetensors", data, None)


def with_nan_weight(weights: bytes) -> bytes:
    """``weights`` with its last float32 value made NaN: what a flipped exponent bit does (the fuzz found this one,
    which loaded before issue 13: every photo came out black)."""
    return weights[:-4] + np.array([np.nan], dtype="<f4").tobytes()


@FUZZ
@given(damaged=mutated((model_seed()[0],)), keep_description=st.booleans())
@example(damaged=with_nan_weight(model_seed()[0]), keep_description=False)
@example(damaged=with_nan_weight(model_seed()[0]), keep_description=True)
def test_damaged_model_files_never_raise_anything_but_model_load_error(tmp_path: Path, bounded_memory: None,
                                                                       damaged: bytes,
                                                                       keep_description: bool) -> None:
    description = model_seed()[1] if keep_description else None
    check_load_model(tmp_path / "damaged.safetensors", damaged, description)


@FUZZ
@given(description=mutated((model_seed()[1],)))
def test_damaged_descriptions_never_raise_anything_but_model_load_error(tmp_path: Path, bounded_memory: None,
                                                                        description: bytes) -> None:
    check_load_model(tmp_path / "described.safetensors", model_seed()[0], description)


_JSON_LEAVES = st.one_of(
    st.none(), st.booleans(),
    st.integers(-(2**70), 2**70), st.sampled_from([0, 1, 2, 3, 4, 8, 4096, 4097, 10**7, -1]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([32.5, 1e7, 1e308, -0.0]),
    st.text(max_size=8), st.sampled_from(["32", "unet", "l1", "topk", "Infinity"]),
)
JSON_VALUES = st.recursive(_JSON_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                                 st.dictionaries(st.text(max_size=6), inner,
                                                                                 max_size=4)),
                           max_leaves=12)
"""Any JSON value (NaN and infinities too, as Python's json writes them), with edge-case numbers and texts."""
WIDTHS = st.one_of(
    st.lists(st.one_of(st.integers(-2, 5000), st.sampled_from([4, 8, 16]),
                       st.floats(0.5, 1e8), st.sampled_from([float("nan"), float("inf"), "32", None, True])),
             max_size=7),
    JSON_VALUES,
)
"""Widths lists as a tampered or hand-written file may hold them: sizes beyond the limit, floats, texts."""
CONFIG_KEYS = ("widths", "blocks", "channels", "noise_channels", "latent_channels", "version", "sparsity",
               "sparsity_weight", "k_fraction", "kl_weight", "dropout")


@st.composite
def descriptions(draw: st.DrawFn) -> dict:
    """A model description whose family and config fields hold arbitrary (often invalid) values."""
    config: dict = {"widths": [4, 8], "blocks": 0}
    for key in draw(st.lists(st.sampled_from(CONFIG_KEYS), max_size=4, unique=True)) + ["widths"] * draw(st.booleans()):
        config[key] = draw(WIDTHS if key == "widths" else st.one_of(JSON_VALUES, st.integers(-5, 5000)))
    family = draw(st.one_of(st.sampled_from(families()), JSON_VALUES))
    description: dict = {"format_version": 1, "name": "fuzz", "family": family, "config": config}
    for key in draw(st.lists(st.sampled_from(["format_version", "name", "training", "validation", "config"]),
                             max_size=2, unique=True)):
        description[key] = draw(JSON_VALUES)
    return description


@FUZZ
@given(description=descriptions(), in_header=st.booleans())
@example(description={"family": "unet", "config": {"widths": [32, 10**7], "blocks": 1}}, in_header=False)
@example(description={"family": "unet", "config": {"widths": [2048] * 6, "blocks": 8}}, in_header=True)
@example(description={"family": "unet", "config": {"widths": [32.5, 64]}}, in_header=False)
@example(description={"family": "unet", "config": {"widths": [1, 1.5], "blocks": 0}}, in_header=False)  # found
@example(description={"family": "unet", "config": {"widths": [float("inf"), 64]}}, in_header=True)
@example(description={"family": "unet", "config": {"widths": [4, 8]}, "format_version": float("inf")},
         in_header=False)
@example(description={"family": "sparse", "config": {"widths": [4, 8], "k_fraction": float("nan")}}, in_header=False)
def test_odd_descriptions_never_raise_anything_but_model_load_error(tmp_path: Path, bounded_memory: None,
                                                                    description: dict, in_header: bool) -> None:
    weights, _ = model_seed()
    text = json.dumps(description)
    path = tmp_path / "odd.safetensors"
    if in_header:  # the file alone, its description in the safetensors header
        check_load_model(path, safetensors_to_bytes(safetensors_to_tensors(weights), metadata={HEADER_KEY: text}),
                         None)
    else:
        check_load_model(path, weights, text.encode())


def test_save_model_output_is_what_the_loader_reads(tmp_path: Path) -> None:
    """The seed the fuzz starts from is what :func:`save_model` writes (not a hand-made look-alike)."""
    torch.manual_seed(0)
    model = create_model("unet", {"widths": [4, 8], "blocks": 0})
    path = save_model(model, tmp_path / "saved", ModelInfo(name="seed", family="", config={}, description="fuzz seed"))
    assert path.read_bytes() == model_seed()[0]


# --- the atheris targets in fuzz/ ---------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", ["fuzz_read_image", "fuzz_load_model"])
def test_the_atheris_targets_accept_their_seeds_and_damaged_ones(tmp_path: Path, name: str) -> None:
    """``fuzz/`` stays runnable: its seeds pass its check, and so do damaged copies (refused by a typed error)."""
    target = fuzz_target(name)
    target.write_seeds(tmp_path / "corpus")
    corpus = sorted((tmp_path / "corpus").iterdir())
    assert len(corpus) >= 5
    rng = np.random.default_rng(0)
    for seed in corpus:
        data = seed.read_bytes()
        target.check(data, tmp_path)
        for _ in range(3):
            damaged = bytearray(data)
            damaged[int(rng.integers(len(damaged)))] ^= 1 << int(rng.integers(8))
            target.check(bytes(damaged[: int(rng.integers(1, len(damaged) + 1))]), tmp_path)
