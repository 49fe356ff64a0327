"""Tests of saving, loading and listing models: safetensors + JSON, never a pickle, clear errors."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from denoiser.errors import DenoiserError, ModelLoadError, UnknownNameError
from denoiser.modelfile import ModelInfo, load_model_file, read_info, save_model
from denoiser.models import Autoencoder, create_model, families
from denoiser.modelstore import describe, list_models, load_model, resolve_model_path, save_to_library, user_models_dir
from denoiser.resources import bundled_models_dir


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own user library and working directory."""
    monkeypatch.setenv("DENOISER_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def tiny(family: str = "unet", seed: int = 0) -> Autoencoder:
    torch.manual_seed(seed)
    config = {"widths": [4, 8, 16], "blocks": 1, "channels": 3}
    if family not in ("unet", "nafnet"):  # the U-Net layouts have skips, not a latent bottleneck of their own
        config["latent_channels"] = 8
    return create_model(family, config)


def sample_info() -> ModelInfo:
    return ModelInfo(
        name="mine",
        family="",
        config={},
        description="a test model",
        trained_on="synthetic squares",
        training={"epochs": 3},
        validation={"psnr": 31.25, "sigma": [15, 25]},
    )


def assert_same_model(a: Autoencoder, b: Autoencoder) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    x = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(5))
    a.eval(), b.eval()
    with torch.no_grad():
        assert torch.equal(a(x, 0.1), b(x, 0.1))


@pytest.mark.parametrize("family", families())
def test_save_load_round_trip(tmp_path, family):
    model = tiny(family)
    path = save_model(model, tmp_path / "model", sample_info())
    assert path == tmp_path / "model.safetensors"
    assert path.is_file() and path.with_suffix(".json").is_file()

    loaded, info = load_model_file(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config == model.config
    assert_same_model(model, loaded)
    assert info.family == family and info.path == path
    assert info.config == json.loads(json.dumps(model.config.to_dict()))
    assert info.trained_on == "synthetic squares"
    assert info.validation == {"psnr": 31.25, "sigma": [15, 25]}
    assert info.training == {"epochs": 3}
    assert info.description == "a test model"
    assert "31.25" in describe(info)


def test_sidecar_json_matches_and_header_alone_is_enough(tmp_path):
    model = tiny("sparse")
    path = save_model(model, tmp_path / "alone.safetensors", sample_info())
    sidecar = path.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    assert data["family"] == "sparse" and data["trained_on"] == "synthetic squares"
    assert data["config"]["latent_channels"] == 8

    sidecar.unlink()
    loaded, info = load_model_file(path)
    assert_same_model(model, loaded)
    assert info.trained_on == "synthetic squares" and info.validation["psnr"] == 31.25
    assert read_info(path).family == "sparse"


class _Exploit:
    """Unpickling this creates (opens for writing) the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch"])
@pytest.mark.parametrize("name", ["evil.pt", "evil.pth", "evil.ckpt", "evil.safetensors"])
def test_pickles_are_refused_and_never_run(tmp_path, writer, name):
    marker = tmp_path / "pwned"
    path = tmp_path / name
    if writer == "pickle":
        with open(path, "wb") as out:
            pickle.dump({"state": _Exploit(str(marker))}, out)
    else:
        torch.save({"state": _Exploit(str(marker))}, path)

    # The payload is live: unpickling the same kind of object does create its marker.
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Exploit(str(control)))).close()
    assert control.exists()

    with pytest.raises(ModelLoadError) as caught:
        load_model_file(path)
    assert caught.value.path == path and name in str(caught.value)
    with pytest.raises(ModelLoadError):
        load_model(str(path))
    assert not marker.exists()


def test_pickle_payload_is_refused_even_with_a_sidecar(tmp_path):
    """A valid-looking JSON beside a pickle named .safetensors must not lead to unpickling."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    with open(path, "wb") as out:
        pickle.dump(_Exploit(str(marker)), out)
    good = save_model(tiny(), tmp_path / "good")
    path.with_suffix(".json").write_text(good.with_suffix(".json").read_text())
    with pytest.raises(ModelLoadError) as caught:
        load_model_file(path)
    assert caught.value.path == path
    assert not marker.exists()


def test_other_suffixes_are_refused(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(ModelLoadError, match="model.onnx"):
        load_model_file(path)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(ModelLoadError, match="absent.safetensors"):
        load_model_file(tmp_path / "absent.safetensors")


@pytest.mark.parametrize("keep_sidecar", [True, False], ids=["with-json", "header-only"])
def test_truncated_file_names_it(tmp_path, keep_sidecar):
    path = save_model(tiny(), tmp_path / "cut")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    if not keep_sidecar:
        path.with_suffix(".json").unlink()
    with pytest.raises(ModelLoadError) as caught:
        load_model_file(path)
    assert caught.value.path == path and "cut.safetensors" in str(caught.value)


def test_weights_not_matching_config_names_the_file(tmp_path):
    path = save_model(tiny(), tmp_path / "mismatch")
    sidecar = path.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data["config"]["widths"] = [4, 8, 32]
    sidecar.write_text(json.dumps(data))
    with pytest.raises(ModelLoadError) as caught:
        load_model_file(path)
    assert caught.value.path == path and "mismatch.safetensors" in str(caught.value)
    assert "weights do not match" in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[1, 2, 3]",
        '{"config": {}}',
        '{"family": "transformer", "config": {}}',
        '{"family": "unet", "config": {"widths": [4, 8, 16], "dropout": 0.1}}',
        '{"family": "unet", "config": {"channels": 2}}',
        '{"family": "unet", "config": {}, "format_version": 99}',
    ],
    ids=["not-json", "not-object", "no-family", "unknown-family", "unknown-field", "out-of-bounds", "newer"],
)
def test_malformed_sidecar_raises_model_load_error(tmp_path, text):
    path = save_model(tiny(), tmp_path / "broken")
    path.with_suffix(".json").write_text(text)
    with pytest.raises(ModelLoadError) as caught:
        load_model_file(path)
    assert "broken." in str(caught.value)


def test_library_save_list_and_load_by_name(tmp_path):
    assert user_models_dir() == tmp_path / "home" / "models"
    model = tiny("variational")
    path = save_to_library(model, "my-model", sample_info())
    assert path == tmp_path / "home" / "models" / "my-model.safetensors"
    names = {info.name: info for info in list_models()}
    assert "my-model" in names
    assert names["my-model"].family == "variational" and not names["my-model"].bundled

    loaded, info = load_model("my-model")
    assert_same_model(model, loaded)
    assert info.name == "my-model" and info.path == path
    assert resolve_model_path("my-model") == (path, False)
    assert resolve_model_path(str(path)) == (path, False)


def test_library_name_with_a_dot_loads_by_name():
    model = tiny()
    path = save_to_library(model, "v1.2")
    assert [info.name for info in list_models() if not info.bundled] == ["v1.2"]
    assert resolve_model_path("v1.2") == (path, False)
    loaded, _ = load_model("v1.2")
    assert_same_model(model, loaded)


def test_list_models_skips_unreadable_files(tmp_path):
    save_to_library(tiny(), "good")
    folder = user_models_dir()
    (folder / "junk.safetensors").write_bytes(b"not a model")
    assert [info.name for info in list_models() if not info.bundled] == ["good"]


@pytest.mark.parametrize("name", ["default", "a/b", "a\\b", "", "what?", "../../x", "sub/x", "..", "x" * 65])
def test_save_to_library_refuses_bad_names(name, tmp_path):
    with pytest.raises(DenoiserError, match="invalid model name"):
        save_to_library(tiny(), name)
    assert not user_models_dir().exists() or not any(user_models_dir().iterdir())
    assert not list(tmp_path.rglob("*.safetensors"))  # nor anywhere around the library


def test_unknown_name_raises():
    save_to_library(tiny(), "present")
    with pytest.raises(UnknownNameError) as caught:
        resolve_model_path("unknown-name")
    assert "unknown-name" in str(caught.value) and "present" in caught.value.known
    with pytest.raises(UnknownNameError):
        load_model("unknown-name")


def test_load_default_model():
    if not (bundled_models_dir() / "default.safetensors").is_file():
        pytest.skip("no bundled default model in this checkout")
    model, info = load_model("default")
    assert info.name == "default" and info.bundled
    assert model.family == "unet" and info.family == "unet"
    x = torch.rand(1, model.config.channels, 32, 32)
    with torch.no_grad():
        assert model(x, 0.1).shape == x.shape


def test_default_and_bundled_models_resolve_to_the_bundled_folder(tmp_path, monkeypatch):
    """``default`` and bundled names come from the bundled folder, flagged as bundled; listed first."""
    bundled = tmp_path / "bundled"
    monkeypatch.setattr("denoiser.modelstore.bundled_models_dir", lambda: bundled)
    model = tiny()
    save_model(model, bundled / "default", ModelInfo(name="shipped", family="", config={}))
    save_model(tiny(seed=1), bundled / "extra")
    save_to_library(tiny(seed=2), "zzz-mine")

    loaded, info = load_model("default")
    assert_same_model(model, loaded)
    assert info.name == "default" and info.bundled and info.family == "unet"
    assert resolve_model_path("extra") == (bundled / "extra.safetensors", True)
    listed = [(info.name, info.bundled) for info in list_models()]
    assert listed == [("default", True), ("extra", True), ("zzz-mine", False)]  # listed by the name that loads it


def test_a_file_from_a_release_with_camera_strength_still_loads(tmp_path):
    path = save_model(tiny(), tmp_path / "older")
    data = json.loads(path.with_suffix(".json").read_text())
    data["auto"] = {"camera_strength": 9.0, "measured_on": "pairs"}  # what the previous release wrote
    path.with_suffix(".json").write_text(json.dumps(data))
    model, info = load_model_file(path)
    assert_same_model(model, tiny())
    assert "auto" not in info.to_json_dict()  # retired: auto strength reads each photo's noise map now
