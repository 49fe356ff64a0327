"""Tests of managing the user's model library: info, rename, remove, import and export."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from denoiser.errors import DenoiserError, ModelLoadError, ModelNameError, UnknownNameError
from denoiser.modelfile import HEADER_KEY, ModelInfo, save_model
from denoiser.models import Autoencoder, create_model
from denoiser.modelstore import (
    MAX_NAME_LENGTH,
    export_model,
    import_model,
    library_model_path,
    list_models,
    load_model,
    model_info,
    model_size_bytes,
    remove_model,
    rename_model,
    save_to_library,
    user_models_dir,
    validate_model_name,
)
from denoiser.resources import bundled_models_dir


@pytest.fixture
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private bundled folder holding ``default`` and ``shipped``, so tests need no real resources."""
    folder = tmp_path / "bundled"
    monkeypatch.setattr("denoiser.modelstore.bundled_models_dir", lambda: folder)
    save_model(tiny(seed=7), folder / "default", ModelInfo(name="the-default", family="", config={}))
    save_model(tiny(seed=8), folder / "shipped")
    return folder


def tiny(seed: int = 0) -> Autoencoder:
    torch.manual_seed(seed)
    return create_model("unet", {"widths": [4, 8], "blocks": 0})


def info_for(name: str = "mine") -> ModelInfo:
    return ModelInfo(name=name, family="", config={}, description="a test model", trained_on="synthetic squares",
                     training={"steps": 10, "seconds": 1.5, "command": "denoiser train"},
                     validation={"psnr": 30.5, "sigma": 25})


def assert_same(a: Autoencoder, b: Autoencoder) -> None:
    """Identical weights and identical outputs."""
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[key], state_b[key]) for key in state_a)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(a.eval()(x, 0.1), b.eval()(x, 0.1))


def library_files() -> list[str]:
    folder = user_models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


class _Exploit:
    """Unpickling this creates (opens for writing) the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


# --- model_info, model_size_bytes ---------------------------------------------------------------------------


def test_model_info_by_library_name_and_by_path(tmp_path: Path) -> None:
    path = save_to_library(tiny(), "mine", info_for())
    by_name = model_info("mine")
    assert by_name.name == "mine" and by_name.path == path and not by_name.bundled
    assert by_name.family == "unet" and by_name.validation["psnr"] == 30.5
    assert by_name.training["steps"] == 10 and by_name.trained_on == "synthetic squares"
    elsewhere = save_model(tiny(), tmp_path / "elsewhere", info_for("other"))
    by_path = model_info(str(elsewhere))
    assert by_path.path == elsewhere and by_path.name == "other"
    assert model_size_bytes(by_name) == path.stat().st_size > 0


def test_model_info_default_is_named_default(bundled: Path) -> None:
    info = model_info("default")
    assert info.name == "default" and info.bundled and info.path == bundled / "default.safetensors"


def test_model_info_real_default() -> None:
    if not (bundled_models_dir() / "default.safetensors").is_file():
        pytest.skip("resources/models/default.safetensors is not in this checkout")
    info = model_info("default")
    assert info.name == "default" and info.bundled and info.family
    assert model_size_bytes(info) > 0


def test_model_info_unknown_and_size_without_a_file() -> None:
    with pytest.raises(UnknownNameError):
        model_info("nothing-here")
    with pytest.raises(DenoiserError, match="ghost"):
        model_size_bytes(ModelInfo(name="ghost", family="unet", config={}))


# --- rename -------------------------------------------------------------------------------------------------


def test_rename_moves_both_files_and_updates_the_description() -> None:
    model = tiny()
    old = save_to_library(model, "before", info_for())
    new = rename_model("before", "after")
    assert new == user_models_dir() / "after.safetensors"
    assert library_files() == ["after.json", "after.safetensors"]
    assert not old.exists() and not old.with_suffix(".json").exists()
    data = json.loads(new.with_suffix(".json").read_text())
    assert data["name"] == "after" and data["trained_on"] == "synthetic squares"
    loaded, info = load_model("after")
    assert_same(model, loaded)
    assert info.name == "after"
    assert [i.name for i in list_models() if not i.bundled] == ["after"]
    with pytest.raises(UnknownNameError) as caught:
        load_model("before")
    assert "after" in caught.value.known


def test_rename_refuses_an_existing_target() -> None:
    save_to_library(tiny(0), "one")
    save_to_library(tiny(1), "two")
    before = {name: (user_models_dir() / name).read_bytes() for name in library_files()}
    with pytest.raises(DenoiserError, match="'two' is already in your library"):
        rename_model("one", "two")
    assert {name: (user_models_dir() / name).read_bytes() for name in library_files()} == before


# --- the naming rule ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mine", "v1.2", "my model", "Modèle à 25 dB", "x" * MAX_NAME_LENGTH, "a.b-c_d"])
def test_names_within_the_rule_are_given_back(name: str) -> None:
    assert validate_model_name(name) == name


@pytest.mark.parametrize(("name", "rule"), [
    ("", "cannot be empty"),
    ("x" * (MAX_NAME_LENGTH + 1), f"at most {MAX_NAME_LENGTH} characters long (this one has 65)"),
    ("../../x", "path separator"),
    ("sub/x", "path separator"),
    ("sub\\x", "path separator"),
    (".", "cannot be '.' or contain '..'"),
    ("..", "cannot be '.' or contain '..'"),
    ("a..b", "cannot be '.' or contain '..'"),
    (".hidden", "cannot start with a dot"),
    ("tab\there", "control characters"),
    ("line\nbreak", "control characters"),
    ("bell\x07", "control characters"),
    ("del\x7f", "control characters"),
    (" padded", "start or end with a space"),
    ("padded ", "start or end with a space"),
    ("what?", "cannot contain any of"),
    ("C:drive", "cannot contain any of"),
    ("default", "bundled model's name"),
    ("x.safetensors", "without a file extension"),
    ("x.JSON", "without a file extension"),
])
def test_names_outside_the_rule_say_which_part_they_break(name: str, rule: str) -> None:
    with pytest.raises(ModelNameError) as caught:
        validate_model_name(name)
    assert isinstance(caught.value, DenoiserError)
    assert str(caught.value).startswith(f"invalid model name {name!r}: ") and rule in str(caught.value)


def test_a_path_is_never_looked_up_as_a_library_model(tmp_path: Path) -> None:
    save_to_library(tiny(), "mine")
    outside = save_model(tiny(), user_models_dir().parent / "outside")
    for name in ("../outside", str(outside.with_suffix("")), ".."):
        with pytest.raises(ModelNameError):
            library_model_path(name)
        with pytest.raises(ModelNameError):
            remove_model(name)
    assert outside.is_file()


def test_a_hand_copied_file_with_an_odd_name_can_still_be_managed() -> None:
    """Names are checked when a model is made; one already lying in the library can be renamed or removed."""
    save_model(tiny(), user_models_dir() / " odd ")
    assert library_model_path(" odd ") == user_models_dir() / " odd .safetensors"
    rename_model(" odd ", "even")
    assert library_files() == ["even.json", "even.safetensors"]


def test_saving_never_replaces_a_library_model() -> None:
    first = save_to_library(tiny(0), "mine")
    before = first.read_bytes()
    with pytest.raises(DenoiserError, match="already exists"):
        save_to_library(tiny(1), "mine")
    assert first.read_bytes() == before


@pytest.mark.parametrize("new", ["default", "a/b", "a\\b", "", "what?", ".hidden", "x.safetensors", " padded",
                                 "../../x", "..", "x" * 65])
def test_rename_refuses_bad_new_names(new: str) -> None:
    save_to_library(tiny(), "keep")
    with pytest.raises(DenoiserError, match="invalid model name"):
        rename_model("keep", new)
    assert library_files() == ["keep.json", "keep.safetensors"]


def test_rename_refuses_default_and_bundled_models(bundled: Path) -> None:
    with pytest.raises(DenoiserError, match="bundled"):
        rename_model("default", "mine")
    with pytest.raises(DenoiserError, match="bundled"):
        rename_model("shipped", "mine")
    assert sorted(p.name for p in bundled.iterdir()) == [
        "default.json", "default.safetensors", "shipped.json", "shipped.safetensors"]
    assert library_files() == []


def test_rename_unknown_lists_the_library() -> None:
    save_to_library(tiny(), "present")
    with pytest.raises(UnknownNameError) as caught:
        rename_model("absent", "new")
    assert "absent" in str(caught.value) and caught.value.known == ["present"]


def test_rename_of_a_model_without_json_writes_one() -> None:
    model = tiny()
    path = save_to_library(model, "bare", info_for())
    path.with_suffix(".json").unlink()
    rename_model("bare", "dressed")
    assert library_files() == ["dressed.json", "dressed.safetensors"]
    loaded, info = load_model("dressed")
    assert_same(model, loaded)
    assert info.name == "dressed" and info.validation["psnr"] == 30.5


# --- remove -------------------------------------------------------------------------------------------------


def test_remove_deletes_both_files() -> None:
    save_to_library(tiny(), "doomed")
    save_to_library(tiny(), "kept")
    remove_model("doomed")
    assert library_files() == ["kept.json", "kept.safetensors"]


def test_remove_unknown_names_the_library_models() -> None:
    save_to_library(tiny(), "kept")
    with pytest.raises(UnknownNameError) as caught:
        remove_model("nope")
    assert "nope" in str(caught.value) and "kept" in str(caught.value)
    assert library_files() == ["kept.json", "kept.safetensors"]


def test_remove_refuses_bundled_and_paths(bundled: Path, tmp_path: Path) -> None:
    for name in ("default", "shipped", str(bundled / "shipped.safetensors")):
        with pytest.raises(DenoiserError):
            remove_model(name)
    assert (bundled / "default.safetensors").is_file() and (bundled / "shipped.safetensors").is_file()
    with pytest.raises(DenoiserError):
        library_model_path("")


# --- import -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_json", [True, False], ids=["with-json", "header-only"])
def test_import_good_file(tmp_path: Path, with_json: bool) -> None:
    model = tiny()
    source = save_model(model, tmp_path / "downloads" / "fancy", info_for("whatever"))
    if not with_json:
        source.with_suffix(".json").unlink()
    info = import_model(source)
    assert info.name == "fancy" and info.path == user_models_dir() / "fancy.safetensors"
    assert library_files() == ["fancy.json", "fancy.safetensors"]
    assert info.path.read_bytes() == source.read_bytes()
    assert json.loads(info.path.with_suffix(".json").read_text())["name"] == "fancy"
    loaded, loaded_info = load_model("fancy")
    assert_same(model, loaded)
    assert loaded_info.trained_on == "synthetic squares" and loaded_info.validation == {"psnr": 30.5, "sigma": 25}
    assert source.is_file()  # copied, not moved


def test_import_under_a_chosen_name_and_from_the_description(tmp_path: Path) -> None:
    source = save_model(tiny(), tmp_path / "a", info_for())
    assert import_model(str(source), name="chosen").name == "chosen"
    # A file called "default" cannot keep its stem, so the name in its description is used.
    default_named = save_model(tiny(), tmp_path / "default", info_for("described"))
    assert import_model(default_named).name == "described"
    with pytest.raises(DenoiserError, match="invalid model name"):
        import_model(source, name="default")
    assert library_files() == ["chosen.json", "chosen.safetensors", "described.json", "described.safetensors"]


def test_import_without_any_usable_name_asks_for_one(tmp_path: Path) -> None:
    source = save_model(tiny(), tmp_path / "default", info_for("default"))
    with pytest.raises(DenoiserError, match="--name"):
        import_model(source)
    assert library_files() == []


@pytest.mark.parametrize("file_name", ["evil.safetensors", "evil.pt"])
def test_import_refuses_pickles_and_runs_nothing(tmp_path: Path, file_name: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / file_name
    with open(path, "wb") as out:
        pickle.dump({"state": _Exploit(str(marker))}, out)
    with pytest.raises(ModelLoadError) as caught:
        import_model(path)
    assert caught.value.path == path and file_name in str(caught.value)
    assert not marker.exists()
    assert library_files() == []


def test_import_refuses_a_torch_save_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(tiny().state_dict(), path)
    with pytest.raises(ModelLoadError, match="weights.pt.*pickle"):
        import_model(path)
    assert library_files() == []


def test_import_refuses_a_truncated_file(tmp_path: Path) -> None:
    path = save_model(tiny(), tmp_path / "cut")
    path.with_suffix(".json").unlink()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="cut.safetensors"):
        import_model(path)
    assert library_files() == []


def test_import_refuses_a_name_collision(tmp_path: Path) -> None:
    existing = save_to_library(tiny(0), "taken", info_for())
    before = existing.read_bytes(), existing.with_suffix(".json").read_bytes()
    source = save_model(tiny(1), tmp_path / "taken")
    with pytest.raises(DenoiserError, match="--name") as caught:
        import_model(source)
    assert "taken" in str(caught.value)
    assert (existing.read_bytes(), existing.with_suffix(".json").read_bytes()) == before
    assert library_files() == ["taken.json", "taken.safetensors"]


# --- export -------------------------------------------------------------------------------------------------


def test_export_writes_one_file_that_imports_into_an_empty_library(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny()
    save_to_library(model, "mine", info_for())
    out = tmp_path / "out"
    out.mkdir()
    path = export_model("mine", out)
    assert path == out / "mine.safetensors"
    assert sorted(p.name for p in out.iterdir()) == ["mine.safetensors"]  # no JSON beside it
    with safe_open(str(path), framework="pt") as handle:
        assert json.loads(handle.metadata()[HEADER_KEY])["name"] == "mine"

    monkeypatch.setenv("DENOISER_HOME", str(tmp_path / "other-home"))
    assert library_files() == []
    info = import_model(path)
    assert info.name == "mine" and info.validation["psnr"] == 30.5 and info.trained_on == "synthetic squares"
    loaded, _ = load_model("mine")
    assert_same(model, loaded)


def test_export_to_a_file_name_carries_a_renamed_models_name(tmp_path: Path) -> None:
    save_to_library(tiny(), "old-name", info_for())
    rename_model("old-name", "new-name")
    path = export_model("new-name", tmp_path / "shared.safetensors")
    assert path == tmp_path / "shared.safetensors" and not path.with_suffix(".json").exists()
    assert model_info(str(path)).name == "new-name"


def test_export_never_overwrites(tmp_path: Path) -> None:
    save_to_library(tiny(), "mine")
    target = tmp_path / "mine.safetensors"
    target.write_bytes(b"precious")
    with pytest.raises(DenoiserError, match="already exists"):
        export_model("mine", tmp_path)
    with pytest.raises(DenoiserError, match="already exists"):
        export_model("mine", target)
    assert target.read_bytes() == b"precious"
    (tmp_path / "lonely.json").write_text("{}")
    with pytest.raises(DenoiserError, match="lonely.json"):
        export_model("mine", tmp_path / "lonely.safetensors")
    with pytest.raises(DenoiserError, match="safetensors"):
        export_model("mine", tmp_path / "mine.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lonely.json", "mine.safetensors"]


def test_export_default(bundled: Path, tmp_path: Path) -> None:
    path = export_model("default", tmp_path)
    assert path == tmp_path / "default.safetensors"
    info = model_info(str(path))
    assert info.name == "default" and not info.bundled
    loaded, _ = load_model(str(path))
    assert_same(load_model("default")[0], loaded)


def test_a_model_is_listed_under_the_name_it_loads_by(tmp_path: Path) -> None:
    """A file whose description carries another name is listed by its file name, which is what loads it."""
    from denoiser.modelfile import ModelInfo, save_model
    from denoiser.modelstore import list_models, load_model, user_models_dir

    model = create_model("unet", {"widths": [4, 8], "blocks": 0})
    save_model(model, user_models_dir() / "on-disk.safetensors", ModelInfo(name="inside", family="unet", config={}))
    names = [info.name for info in list_models() if not info.bundled]
    assert names == ["on-disk"]
    assert load_model("on-disk")[0].family == "unet"
