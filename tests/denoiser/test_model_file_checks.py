"""Issue 13, findings 4 and 5: model files are checked before they are trusted.

4. Weights holding NaN or infinity are refused at load and at import, and a model whose output is not finite
   fails the photo (``denoise_array`` raises; a batch records the file as failed) instead of saving black.
5. A description asking for a huge network is refused from the safetensors header, before any tensor or module
   is allocated; odd widths (``32.5``, ``"32"``, infinity, negative, empty) and deeply nested JSON give a
   :class:`ModelLoadError` naming the file, never another exception.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from memory_limits import address_space_headroom
from PIL import Image as PILImage

from denoiser import modelfile
from denoiser.batch import MANIFEST_NAME, BatchSettings, run_batch
from denoiser.errors import DenoiserError, ModelLoadError
from denoiser.estimator import EstimatorConfig, NoiseMapEstimator, load_estimator, save_estimator
from denoiser.inference import NonFiniteOutputError, TileSettings, denoise_array
from denoiser.modelfile import (
    HEADER_KEY,
    MAX_WEIGHT_BYTES,
    ModelInfo,
    load_model_file,
    read_info,
    save_model,
    weights_bytes,
)
from denoiser.models import Autoencoder, create_model
from denoiser.modelstore import import_model, user_models_dir
from denoiser.safetensors_checks import read_header

TINY = {"widths": [4, 8], "blocks": 1}


def tiny(seed: int = 0) -> Autoencoder:
    torch.manual_seed(seed)
    return create_model("unet", TINY)


def poisoned(value: float, seed: int = 0) -> Autoencoder:
    """A tiny model with one weight set to ``value`` (NaN or infinity): what a diverged training leaves."""
    model = tiny(seed)
    with torch.no_grad():
        model.tail.weight[0, 0, 0, 0] = value
    return model


def library_files() -> list[str]:
    folder = user_models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def write_description(path: Path, config: object, family: str = "unet") -> Path:
    """Give the model file ``path`` (a .safetensors) a sidecar JSON with this ``config`` value, written raw."""
    sidecar = path.with_suffix(".json")
    sidecar.write_text(json.dumps({"format_version": 1, "name": path.stem, "family": family, "config": config}))
    return sidecar


def peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # kB on Linux, bytes on macOS


# --- finding 4: NaN and infinite weights ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("sidecar", [True, False], ids=["with-json", "header-only"])
def test_weights_that_are_not_finite_are_refused_at_load(tmp_path: Path, value: float, sidecar: bool) -> None:
    path = save_model(poisoned(value), tmp_path / "diverged")
    if not sidecar:
        path.with_suffix(".json").unlink()
    with pytest.raises(ModelLoadError, match="NaN or infinite") as caught:
        load_model_file(path)
    assert caught.value.path == path and "diverged.safetensors" in str(caught.value)
    assert "tail.weight" in str(caught.value)  # which tensor
    assert "use another model" in str(caught.value)  # and what to do


def test_weights_that_are_not_finite_are_refused_at_import_and_nothing_is_copied(tmp_path: Path) -> None:
    path = save_model(poisoned(float("nan")), tmp_path / "diverged")
    with pytest.raises(ModelLoadError, match="diverged.safetensors.*NaN"):
        import_model(path)
    with pytest.raises(ModelLoadError, match="NaN"):
        import_model(path, "other-name")
    assert library_files() == []


def test_an_estimator_with_weights_that_are_not_finite_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    estimator = NoiseMapEstimator(EstimatorConfig(width=4, blocks=1))
    with torch.no_grad():
        estimator.head[1].bias[0] = float("nan")
    path = save_estimator(estimator, tmp_path / "noise-map.safetensors")
    with pytest.raises(ModelLoadError, match="noise-map.safetensors.*NaN or infinite"):
        load_estimator(path)


def test_an_estimator_whose_tensors_do_not_match_its_config_is_refused_by_name(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = save_estimator(NoiseMapEstimator(EstimatorConfig(width=4, blocks=1)), tmp_path / "est.safetensors")
    header = json.dumps({"config": {"width": 8, "blocks": 1}, "info": {}})
    tensors, _ = modelfile.read_weights(path)
    from safetensors.torch import save as safetensors_to_bytes

    path.write_bytes(safetensors_to_bytes(tensors, metadata={"denoiser_estimator": header}))
    with pytest.raises(ModelLoadError, match="est.safetensors.*do not match"):
        load_estimator(path)


@pytest.fixture
def nan_model() -> Autoencoder:
    """A loaded model whose forward gives NaN: one weight spoilt after loading (as a bad GPU or a bug might)."""
    return poisoned(float("nan"))


def test_denoise_array_raises_instead_of_returning_nan(nan_model: Autoencoder) -> None:
    image = np.random.default_rng(0).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    with pytest.raises(NonFiniteOutputError, match=r"non-finite values \(NaN/Inf\)"):
        denoise_array(image, nan_model, 15.0, device="cpu")
    assert issubclass(NonFiniteOutputError, DenoiserError)
    # Every path through denoise_array: tiles, several passes, a grey photo through a colour model.
    with pytest.raises(NonFiniteOutputError):
        denoise_array(image, nan_model, 15.0, tiles=TileSettings(tile=32, overlap=8, passes=2), device="cpu")
    with pytest.raises(NonFiniteOutputError):
        denoise_array(image[:, :, 0], nan_model, 15.0, device="cpu")
    # Training's validation asks for the values as they are (a diverged model scores NaN there).
    raw = denoise_array(image, nan_model, 15.0, device="cpu", check_finite=False)
    assert np.isnan(raw).any()


def test_denoise_array_raises_for_infinite_output() -> None:
    model = poisoned(float("inf"))
    image = np.full((16, 16, 3), 200, dtype=np.uint8)
    with pytest.raises(DenoiserError, match="non-finite"):
        denoise_array(image, model, 15.0, device="cpu")


def test_non_finite_input_or_noise_level_is_named_as_such(nan_model: Autoencoder) -> None:
    model = tiny()
    image = np.full((16, 16, 3), 0.5, dtype=np.float32)
    image[3, 4, 1] = np.nan
    with pytest.raises(DenoiserError, match="image holds non-finite"):
        denoise_array(image, model, 15.0, device="cpu")
    with pytest.raises(DenoiserError, match="noise level must be a finite"):
        denoise_array(np.zeros((16, 16, 3), np.uint8), model, float("nan"), device="cpu")
    level = np.full((16, 16, 1), 15.0, dtype=np.float32)
    level[0, 0] = np.inf
    with pytest.raises(DenoiserError, match="noise map holds non-finite"):
        denoise_array(np.zeros((16, 16, 3), np.uint8), model, level, device="cpu")


def test_a_batch_records_a_photo_as_failed_when_the_model_gives_nan(tmp_path: Path, nan_model: Autoencoder) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    pixels = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(src / "photo.png")
    settings = BatchSettings(inputs=[src], output=out, strength=15.0, tiles=TileSettings(tile=32, overlap=8),
                             device="cpu")
    report = run_batch(settings, nan_model, "nan-model")
    (result,) = report.results
    assert result.status == "failed" and result.output is None
    assert "photo.png" in result.message and "non-finite" in result.message
    assert (report.done, report.failed) == (0, 1)
    assert not list(out.glob("*.png"))  # no black picture written
    entry = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))["files"][str((src / "photo.png").resolve())]
    assert entry["status"] == "failed" and entry["output"] is None


# --- finding 5: the header is checked before anything is built ------------------------------------------------


@pytest.mark.parametrize(
    ("config", "what"),
    [
        ({"widths": [32, 10_000_000], "blocks": 1}, "width"),  # 5 GB of weights at today's build
        ({"widths": [32, 1e7], "blocks": 1}, "width"),  # as JSON writes 1e7: a float
        ({"widths": [2048] * 6, "blocks": 8}, "GiB of weights"),  # passes every bound, 3+ GB of weights
        ({"widths": [4096] * 6, "blocks": 8}, "GiB of weights"),
        ({"widths": [32, 64], "blocks": 1, "latent_channels": 10**9}, "latent_channels"),
    ],
    ids=["int-1e7", "float-1e7", "2048x6-8-blocks", "4096x6-8-blocks", "huge-latent"],
)
def test_a_description_asking_for_a_huge_network_is_refused_fast_and_small(tmp_path: Path, config: dict,
                                                                           what: str) -> None:
    path = save_model(tiny(), tmp_path / "huge")
    family = "variational" if "latent_channels" in config else "unet"
    write_description(path, config, family)
    before, started = peak_rss_bytes(), time.monotonic()
    with address_space_headroom(1024**3), pytest.raises(ModelLoadError) as caught:
        load_model_file(path)
    assert time.monotonic() - started < 10  # a few ms here; generous for a busy CI machine
    assert peak_rss_bytes() - before < 200 * 1024**2
    assert caught.value.path == path and "huge.safetensors" in str(caught.value)
    assert "not a valid model file" in str(caught.value) and what in str(caught.value)


def test_a_file_holding_more_than_the_limit_is_refused_from_its_header(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_model(tiny(), tmp_path / "big")
    assert read_header(path, "").data_bytes < MAX_WEIGHT_BYTES
    monkeypatch.setattr(modelfile, "MAX_WEIGHT_BYTES", 1024)  # the tiny model holds a few kB
    with pytest.raises(ModelLoadError, match="big.safetensors.*holds .* of weights, more than"):
        load_model_file(path)


def _no_tensor_read(*args: object, **kwargs: object) -> None:
    raise AssertionError("a tensor was read before the header was checked")


@pytest.mark.parametrize(
    "change",
    ["wider", "extra-tensor", "missing-tensor", "integer-type"],
)
def test_a_header_that_does_not_match_the_configuration_is_refused_before_any_tensor_is_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    model = tiny()
    tensors = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    info = ModelInfo(name="odd", family="unet", config=model.config.to_dict())
    if change == "wider":
        info.config["widths"] = [4, 16]
    elif change == "extra-tensor":
        tensors["payload"] = torch.zeros(4)
    elif change == "missing-tensor":
        del tensors["tail.bias"]
    else:
        tensors["tail.bias"] = torch.zeros(3, dtype=torch.int64)
    path = tmp_path / "odd.safetensors"
    path.write_bytes(weights_bytes(tensors, info))
    monkeypatch.setattr(modelfile, "read_weights", _no_tensor_read)
    with pytest.raises(ModelLoadError, match="odd.safetensors.*weights do not match the unet configuration"):
        load_model_file(path)


@pytest.mark.parametrize(
    "widths",
    [[32.5, 64], ["32", 64], "Infinity", [float("inf"), 64], [-32, 64], [0, 64], [], [4], [True, 8], {"a": 1},
     [[4], 8], 7, None],
    ids=["32.5", "text", "text-infinity", "inf", "negative", "zero", "empty", "one-level", "bool", "object",
         "nested", "number", "null"],
)
def test_odd_widths_are_refused_by_name(tmp_path: Path, widths: object) -> None:
    path = save_model(tiny(), tmp_path / "odd")
    write_description(path, {"widths": widths, "blocks": 1})
    with pytest.raises(ModelLoadError) as caught:
        load_model_file(path)
    text = str(caught.value)
    assert caught.value.path == path and "odd.safetensors" in text
    assert "not a valid model file" in text and "unexpected" not in text


@pytest.mark.parametrize(
    "field",
    [{"blocks": 1.5}, {"blocks": "1"}, {"channels": 3.0}, {"noise_channels": float("nan")}, {"version": 1e999},
     {"version": "1"}],
    ids=["blocks-1.5", "blocks-text", "channels-float", "noise-nan", "version-inf", "version-text"],
)
def test_odd_config_values_are_refused_by_name(tmp_path: Path, field: dict) -> None:
    path = save_model(tiny(), tmp_path / "odd")
    write_description(path, {"widths": [4, 8], "blocks": 1, **field})
    with pytest.raises(ModelLoadError, match="odd.safetensors: not a valid model file"):
        load_model_file(path)


@pytest.mark.parametrize("where", ["sidecar", "header", "config"])
def test_deeply_nested_json_is_refused_by_name(tmp_path: Path, where: str) -> None:
    path = save_model(tiny(), tmp_path / "deep")
    deep = "[" * 100_000 + "]" * 100_000  # json.loads raises RecursionError on this
    if where == "sidecar":
        path.with_suffix(".json").write_text(deep)
    elif where == "header":
        path.with_suffix(".json").unlink()
        tensors, _ = modelfile.read_weights(path)
        from safetensors.torch import save as safetensors_to_bytes

        path.write_bytes(safetensors_to_bytes(tensors, metadata={HEADER_KEY: deep}))
    else:  # deep, but within what the JSON parser takes: refused as too deep, never a RecursionError later
        sidecar = path.with_suffix(".json")
        sidecar.write_text('{"family": "unet", "config": {"widths": ' + "[" * 500 + "]" * 500 + "}}")
    with pytest.raises(ModelLoadError) as caught:
        load_model_file(path)
    assert "deep." in str(caught.value) and "nested" in str(caught.value)
    with pytest.raises(ModelLoadError):
        read_info(path)
    with pytest.raises(ModelLoadError):
        import_model(path)
    assert library_files() == []


@pytest.mark.parametrize(
    "text",
    ['{"family": "unet", "config": {}, "format_version": Infinity}',
     '{"family": "unet", "config": {}, "format_version": ' + "9" * 5000 + "}",
     '{"family": ["unet"], "config": {}}',
     '{"family": "unet", "config": "widths"}'],
    ids=["version-infinity", "5000-digit-number", "family-list", "config-text"],
)
def test_odd_descriptions_are_refused_by_name(tmp_path: Path, text: str) -> None:
    """``int(inf)`` raised OverflowError and a 5000-digit number ValueError, both untyped, before."""
    path = save_model(tiny(), tmp_path / "odd")
    path.with_suffix(".json").write_text(text)
    with pytest.raises(ModelLoadError, match=r"odd\.(json|safetensors)"):
        load_model_file(path)


@pytest.mark.parametrize(
    "damage",
    ["length-beyond-file", "length-huge", "extra-bytes", "overlapping", "shape-vs-bytes", "unknown-dtype"],
)
def test_a_damaged_header_is_refused_by_name(tmp_path: Path, damage: str) -> None:
    path = save_model(tiny(), tmp_path / "bad")
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    table = json.loads(data[8 : 8 + length])
    body = data[8 + length :]
    if damage == "length-beyond-file":
        data = (len(data) * 2).to_bytes(8, "little") + data[8:]
    elif damage == "length-huge":
        data = (2**63).to_bytes(8, "little") + data[8:]
    elif damage == "extra-bytes":
        data = data + b"\0" * 16
    else:
        name = max((key for key in table if key != "__metadata__"), key=lambda key: table[key]["data_offsets"][0])
        if damage == "overlapping":  # the last tensor's bytes made to start where the first one's do
            table[name]["data_offsets"] = [0, table[name]["data_offsets"][1] - table[name]["data_offsets"][0]]
        elif damage == "shape-vs-bytes":
            table[name]["shape"] = [10**12]
        else:
            table[name]["dtype"] = "Q99"
        header = json.dumps(table).encode()
        data = len(header).to_bytes(8, "little") + header + body
    path.write_bytes(data)
    path.with_suffix(".json").unlink()
    with pytest.raises(ModelLoadError, match="bad.safetensors: not a valid safetensors file"):
        load_model_file(path)
