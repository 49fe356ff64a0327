"""The model manager dialog, headless: listing, rename, delete, import (good and hostile files), export, details."""

from __future__ import annotations

import json
import pickle
import re
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from pytestqt.qtbot import QtBot

import ui.model_manager as model_manager_module
from denoiser.io import read_image
from denoiser.modelfile import ModelInfo, load_model_file, save_model
from denoiser.models import Autoencoder, create_model
from denoiser.modelstore import save_to_library, user_models_dir
from denoiser.resources import bundled_estimator_dir, bundled_models_dir
from ui.model_manager import ModelManager, validation_text
from ui.worker import WorkerBridge

HAS_DEFAULT = (bundled_models_dir() / "default.safetensors").is_file()


def tiny(seed: int = 0) -> Autoencoder:
    torch.manual_seed(seed)
    return create_model("unet", {"widths": [4, 8], "blocks": 0})


def psnr_info(name: str) -> ModelInfo:
    return ModelInfo(name=name, family="", config={}, description="a test model", trained_on="synthetic squares",
                     training={"steps": 10, "seconds": 125.0, "command": "denoiser train --steps 10"},
                     validation={"psnr": 30.5, "metric": "val_psnr", "best": 30.5, "start": 24.25, "gain": 6.25})


def loss_info(name: str) -> ModelInfo:
    """A model validated self-supervised: a loss, no PSNR."""
    return ModelInfo(name=name, family="", config={}, trained_on="noisy phone photos",
                     validation={"metric": "val_loss", "best": 0.0123, "start": 0.05, "gain": 0.0377})


def library_files() -> list[str]:
    folder = user_models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def library_rows(manager: ModelManager) -> list[str]:
    """The table's names without the bundled ones (which depend on the checkout)."""
    return [name for name in manager.names() if not manager.is_bundled(name)]


class _Exploit:
    """Unpickling this creates (opens for writing) the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def library() -> dict[str, Path]:
    return {
        "alpha": save_to_library(tiny(0), "alpha", psnr_info("alpha")),
        "beta": save_to_library(tiny(1), "beta", loss_info("beta")),
    }


@pytest.fixture
def manager(qtbot: QtBot, bridge: WorkerBridge, library: dict[str, Path]) -> ModelManager:
    dialog = ModelManager(bridge)
    qtbot.addWidget(dialog)
    dialog.confirm = lambda *_args: True  # type: ignore[method-assign]
    return dialog


def cell(manager: ModelManager, name: str, column: str) -> str:
    row = manager.names().index(name)
    return manager.table.item(row, model_manager_module.COLUMNS.index(column)).text()


def wait_done(qtbot: QtBot, manager: ModelManager, start) -> list:
    """Run ``start()`` (which submits a job) and wait for its outcome; returns operation_done's arguments."""
    with qtbot.waitSignal(manager.operation_done, timeout=10000) as blocker:
        start()
    return blocker.args


# --- listing --------------------------------------------------------------------------------------------------


def test_table_lists_the_library_with_family_validation_size_and_date(manager: ModelManager) -> None:
    expected = ["alpha", "beta"]
    if HAS_DEFAULT:
        expected = ["default", *expected]  # bundled first, as the engine lists them
    assert manager.names() == expected
    assert cell(manager, "alpha", "Family") == "unet"
    assert cell(manager, "alpha", "Trained on") == "synthetic squares"
    assert cell(manager, "alpha", "Validation") == "30.50 dB"
    assert cell(manager, "beta", "Validation") == "val_loss 0.0123"  # no PSNR: the metric it has
    size = (user_models_dir() / "alpha.safetensors").stat().st_size
    assert cell(manager, "alpha", "Size").endswith("KiB") and size > 1024
    assert cell(manager, "alpha", "Modified")[:2] == "20"  # a date, YYYY-MM-DD HH:MM
    assert cell(manager, "alpha", "Bundled") == ""
    assert not manager.is_bundled("alpha")


@pytest.mark.skipif(not HAS_DEFAULT, reason="resources/models/default.safetensors is not in this checkout")
def test_the_bundled_default_is_listed_and_marked(manager: ModelManager) -> None:
    assert manager.names()[0] == "default" and manager.is_bundled("default")
    assert cell(manager, "default", "Bundled") == "yes"
    assert cell(manager, "default", "Family") == "unet"
    # what it was measured on: each model on photos held out of its own training data
    assert cell(manager, "default", "Validation").endswith(" dB (\u03c325 synthetic, own held-out photos)")


def test_validation_text_cases() -> None:
    assert validation_text({"psnr": 29.987}) == "29.99 dB"
    assert validation_text({"metric": "val_loss", "best": 0.5}) == "val_loss 0.5"
    assert validation_text({}) == "-"


def test_refresh_picks_up_models_saved_elsewhere_and_keeps_the_selection(manager: ModelManager) -> None:
    assert manager.select("beta")
    save_to_library(tiny(2), "gamma", psnr_info("gamma"))
    assert "gamma" not in manager.names()
    manager.refresh()
    assert library_rows(manager) == ["alpha", "beta", "gamma"]
    assert manager.selected_name() == "beta"
    assert not manager.select("nothing") and manager.selected_name() == "beta"


# --- rename ---------------------------------------------------------------------------------------------------


def test_rename_updates_table_and_files_and_emits(qtbot: QtBot, manager: ModelManager) -> None:
    with qtbot.waitSignal(manager.models_changed, timeout=1000):
        assert manager.rename("alpha", "renamed")
    assert library_rows(manager) == ["beta", "renamed"]
    assert manager.selected_name() == "renamed"
    assert library_files() == ["beta.json", "beta.safetensors", "renamed.json", "renamed.safetensors"]
    assert cell(manager, "renamed", "Validation") == "30.50 dB"
    assert "renamed" in manager.message_label.text()


def test_rename_button_asks_for_the_name(qtbot: QtBot, manager: ModelManager,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def answer(_title: str, _prompt: str, current: str) -> str:
        asked.append(current)
        return "from-button"

    monkeypatch.setattr(manager, "ask_name", answer)
    manager.select("beta")
    with qtbot.waitSignal(manager.models_changed, timeout=1000):
        manager.rename_button.click()
    assert asked == ["beta"]
    assert library_rows(manager) == ["alpha", "from-button"]


def test_rename_refusals_are_shown_and_change_nothing(qtbot: QtBot, manager: ModelManager) -> None:
    before = library_files()
    with qtbot.assertNotEmitted(manager.models_changed):
        assert not manager.rename("alpha", "beta")  # taken
    assert "'beta' is already in your library" in manager.last_error
    assert manager.message_label.text() == manager.last_error
    assert not manager.rename("alpha", "a/b")
    assert "invalid model name" in manager.last_error
    assert library_files() == before and library_rows(manager) == ["alpha", "beta"]


@pytest.mark.parametrize(("new", "rule"), [("../../x", "path separator"), ("sub/x", "path separator"),
                                           ("..", "'..'"), ("x" * 65, "at most 64"), ("tab\tname", "control")])
def test_rename_to_a_name_outside_the_rule_is_refused_and_writes_nowhere(
        qtbot: QtBot, manager: ModelManager, new: str, rule: str) -> None:
    everything = user_models_dir().parent.parent  # the library, its parent and the folder above
    before = sorted(everything.rglob("*"))
    with qtbot.assertNotEmitted(manager.models_changed):
        assert not manager.rename("alpha", new)
    assert "invalid model name" in manager.last_error and rule in manager.last_error
    assert manager.message_label.text() == manager.last_error
    assert sorted(everything.rglob("*")) == before and library_rows(manager) == ["alpha", "beta"]


# --- delete ---------------------------------------------------------------------------------------------------


def test_delete_asks_then_removes_and_emits(qtbot: QtBot, manager: ModelManager) -> None:
    questions: list[str] = []

    def confirm(_title: str, question: str) -> bool:
        questions.append(question)
        return True

    manager.confirm = confirm  # type: ignore[method-assign]
    manager.select("alpha")
    with qtbot.waitSignal(manager.models_changed, timeout=1000):
        manager.delete_button.click()
    assert len(questions) == 1 and "alpha" in questions[0]
    assert library_rows(manager) == ["beta"]
    assert library_files() == ["beta.json", "beta.safetensors"]


def test_deleting_the_model_in_use_says_so_before(qtbot: QtBot, bridge: WorkerBridge,
                                                  library: dict[str, Path]) -> None:
    """The question did not say the model to delete was the one in use."""
    dialog = ModelManager(bridge, model_in_use=lambda: "alpha")
    qtbot.addWidget(dialog)
    questions: list[str] = []
    dialog.confirm = lambda _title, question: questions.append(question) or False  # type: ignore[method-assign]
    dialog.delete("alpha")
    dialog.delete("beta")
    assert "It is the model in use" in questions[0] and "model in use" not in questions[1]


def test_a_refused_rename_says_cannot_rename_once(manager: ModelManager) -> None:
    """It read "Cannot rename 'alpha': cannot rename 'alpha': a model named 'beta' is already in your library"."""
    assert not manager.rename("alpha", "beta")
    assert manager.last_error.lower().count("cannot rename") == 1 and "'beta'" in manager.last_error


def test_delete_declined_keeps_the_model(qtbot: QtBot, manager: ModelManager) -> None:
    manager.confirm = lambda *_args: False  # type: ignore[method-assign]
    with qtbot.assertNotEmitted(manager.models_changed):
        assert not manager.delete("alpha")
    assert library_rows(manager) == ["alpha", "beta"]
    assert "alpha.safetensors" in library_files()


# --- bundled models -------------------------------------------------------------------------------------------


@pytest.fixture
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private bundled folder holding ``default`` and ``shipped``, so these tests need no real resources."""
    folder = tmp_path / "bundled"
    monkeypatch.setattr("denoiser.modelstore.bundled_models_dir", lambda: folder)
    save_model(tiny(7), folder / "default", ModelInfo(name="the-default", family="", config={}))
    save_model(tiny(8), folder / "shipped", psnr_info("shipped"))
    return folder


def test_bundled_rows_cannot_be_renamed_or_deleted(qtbot: QtBot, bundled: Path, manager: ModelManager) -> None:
    manager.refresh()
    assert manager.names() == ["default", "shipped", "alpha", "beta"]  # stem, not the JSON's "the-default"
    before = sorted(p.name for p in bundled.iterdir())
    for name in ("default", "shipped"):
        assert manager.is_bundled(name)
        assert manager.select(name)
        assert not manager.rename_button.isEnabled() and not manager.delete_button.isEnabled()
        assert manager.export_button.isEnabled() and manager.details_button.isEnabled()
        with qtbot.assertNotEmitted(manager.models_changed):
            assert not manager.rename(name, "mine")
            assert "bundled" in manager.last_error and name in manager.last_error
            assert not manager.delete(name)
            assert "bundled" in manager.last_error
    assert sorted(p.name for p in bundled.iterdir()) == before
    assert manager.names() == ["default", "shipped", "alpha", "beta"]
    manager.select("alpha")
    assert manager.rename_button.isEnabled() and manager.delete_button.isEnabled()


# --- import ---------------------------------------------------------------------------------------------------


def test_import_of_a_good_file_adds_a_row(qtbot: QtBot, tmp_path: Path, manager: ModelManager) -> None:
    source = save_model(tiny(3), tmp_path / "outside" / "fresh", psnr_info("fresh"))
    source.with_suffix(".json").unlink()  # the header alone describes it
    with qtbot.waitSignal(manager.models_changed, timeout=10000):
        manager.import_file(source)
    assert library_rows(manager) == ["alpha", "beta", "fresh"]
    assert manager.selected_name() == "fresh"
    assert cell(manager, "fresh", "Validation") == "30.50 dB"
    assert "fresh.safetensors" in library_files()
    assert manager.last_error == "" and not manager.busy()


def test_import_button_asks_for_a_file_and_a_new_name_on_a_clash(qtbot: QtBot, tmp_path: Path,
                                                                  manager: ModelManager,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    source = save_model(tiny(4), tmp_path / "alpha", psnr_info("alpha"))  # same stem as a library model
    monkeypatch.setattr(manager, "ask_import_path", lambda: source)
    monkeypatch.setattr(manager, "ask_name", lambda *_args: "alpha-2")
    with qtbot.waitSignal(manager.models_changed, timeout=10000):
        manager.import_button.click()
    assert sorted(library_rows(manager)) == ["alpha", "alpha-2", "beta"]  # listed in file-name order


def _pickle_file(tmp_path: Path, marker: Path) -> Path:
    path = tmp_path / "crafted.safetensors"
    with open(path, "wb") as out:
        pickle.dump({"state": _Exploit(str(marker))}, out)
    return path


def _torch_file(tmp_path: Path, marker: Path) -> Path:
    path = tmp_path / "weights.pt"
    torch.save({"state": _Exploit(str(marker))}, path)
    return path


def _truncated_file(tmp_path: Path, marker: Path) -> Path:
    path = save_model(tiny(5), tmp_path / "cut", psnr_info("cut"))
    path.with_suffix(".json").unlink()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("make", [_pickle_file, _torch_file, _truncated_file], ids=["pickle", "pt", "truncated"])
def test_import_of_a_bad_file_is_refused_with_a_message(qtbot: QtBot, tmp_path: Path, manager: ModelManager,
                                                        make) -> None:
    marker = tmp_path / "pwned"
    path = make(tmp_path, marker)
    if marker.exists():  # torch.save ran __reduce__ while writing; only loading must not
        marker.unlink()
    before_files, before_rows = library_files(), manager.names()
    with qtbot.assertNotEmitted(manager.models_changed):
        operation, ok, message = wait_done(qtbot, manager, lambda: manager.import_file(path))
    assert (operation, ok) == ("import", False)
    assert path.name in message and path.name in manager.message_label.text()
    assert manager.last_error == message
    assert manager.message_label.text() == message
    assert not marker.exists()  # the payload never ran
    assert library_files() == before_files and manager.names() == before_rows
    assert not manager.busy()


def test_import_of_a_taken_name_is_refused(qtbot: QtBot, tmp_path: Path, manager: ModelManager) -> None:
    existing = (user_models_dir() / "beta.safetensors").read_bytes()
    source = save_model(tiny(6), tmp_path / "beta")
    _op, ok, message = wait_done(qtbot, manager, lambda: manager.import_file(source))
    assert not ok and "'beta'" in message and "already in your library" in message
    assert (user_models_dir() / "beta.safetensors").read_bytes() == existing


def test_other_jobs_on_the_bridge_are_ignored(qtbot: QtBot, bridge: WorkerBridge, manager: ModelManager) -> None:
    def broken(_should_stop, _on_progress):
        raise model_manager_module.DenoiserError("somebody else's file: broken")

    handle = bridge.submit("thumbnails", broken, lane="io", replace=False)
    with qtbot.waitSignal(handle.failed, timeout=5000):
        pass
    assert manager.last_error == "" and manager.message_label.text() == ""


# --- export ---------------------------------------------------------------------------------------------------


def test_export_writes_a_file_that_loads_back(qtbot: QtBot, tmp_path: Path, manager: ModelManager) -> None:
    target = tmp_path / "exported" / "copy.safetensors"
    with qtbot.assertNotEmitted(manager.models_changed):
        operation, ok, message = wait_done(qtbot, manager, lambda: manager.export_to("alpha", target))
    assert (operation, ok) == ("export", True) and str(target) in message
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.safetensors"]  # one self-contained file
    model, info = load_model_file(target)
    original, _ = load_model_file(user_models_dir() / "alpha.safetensors")
    assert info.family == "unet" and info.validation["psnr"] == 30.5
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), original.state_dict().values(),
                                                  strict=True))
    # Exporting again never overwrites: refused with a message naming the file.
    _op, ok, message = wait_done(qtbot, manager, lambda: manager.export_to("alpha", target))
    assert not ok and "copy.safetensors" in message and "already exists" in manager.last_error


def test_export_button_asks_for_a_destination(qtbot: QtBot, tmp_path: Path, manager: ModelManager,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def destination(name: str) -> Path:
        asked.append(name)
        return tmp_path

    monkeypatch.setattr(manager, "ask_export_path", destination)
    manager.select("beta")
    _op, ok, _message = wait_done(qtbot, manager, manager.export_button.click)
    assert ok and asked == ["beta"]
    assert load_model_file(tmp_path / "beta.safetensors")[1].validation["metric"] == "val_loss"


# --- sample: what a variational model draws from its prior ------------------------------------------------------


@pytest.fixture
def dreamer() -> Path:
    """A tiny grey variational model in the library: one channel, so the samples' channels are the model's."""
    torch.manual_seed(0)
    vae = create_model("variational", {"channels": 1, "widths": [4, 8], "blocks": 0, "latent_channels": 4})
    return save_to_library(vae, "dreamer")


def test_sample_is_offered_only_for_a_variational_model(dreamer: Path, manager: ModelManager) -> None:
    manager.select("alpha")  # a unet: no prior to draw from
    assert not manager.sample_button.isEnabled() and "only variational models" in manager.sample_button.toolTip()
    manager.select("dreamer")
    assert manager.sample_button.isEnabled()
    manager.select("beta")
    assert not manager.sample_button.isEnabled()


def test_sample_button_saves_a_grid_where_the_file_dialog_says(qtbot: QtBot, tmp_path: Path, dreamer: Path,
                                                              manager: ModelManager,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dreamer-samples.png").write_bytes(b"an earlier grid")
    monkeypatch.setenv("HOME", str(home))
    offered: list[str] = []

    def save_dialog(_parent, _title, suggested, filters):  # the user accepts the name offered
        offered.append(suggested)
        assert filters.startswith("PNG")
        return suggested, ""

    monkeypatch.setattr(model_manager_module.QFileDialog, "getSaveFileName", staticmethod(save_dialog))
    manager.select("dreamer")
    with qtbot.assertNotEmitted(manager.models_changed):
        operation, ok, message = wait_done(qtbot, manager, manager.sample_button.click)
    target = home / "dreamer-samples-2.png"  # the taken name is not offered
    assert offered == [str(target)] and (operation, ok) == ("sample", True)
    assert str(target) in message and "16 images of 64 x 64 pixels" in message
    grid = read_image(target)
    assert grid.pixels.shape == (4 * 64, 4 * 64, 1) and grid.pixels.dtype == np.uint8  # 16 grey images, 4 x 4
    assert grid.pixels.std() > 0  # decoded latents, not an empty sheet
    assert (home / "dreamer-samples.png").read_bytes() == b"an earlier grid"


def test_sample_writes_what_the_command_line_writes(qtbot: QtBot, tmp_path: Path, dreamer: Path,
                                                    manager: ModelManager) -> None:
    from denoiser.cli import main

    _op, ok, message = wait_done(qtbot, manager,
                                 lambda: manager.sample_to("dreamer", tmp_path / "app.png", count=3, size=20, seed=7))
    assert ok and "3 images of 20 x 20 pixels, seed 7" in message
    assert main(["models", "sample", "dreamer", "-o", str(tmp_path / "cli.png"), "--count", "3", "--size", "20",
                 "--seed", "7"]) == 0
    app, cli = read_image(tmp_path / "app.png").pixels, read_image(tmp_path / "cli.png").pixels
    assert app.shape == (40, 40, 1) and np.array_equal(app, cli)


def test_sample_refusals_are_shown_and_write_nothing(qtbot: QtBot, tmp_path: Path, dreamer: Path,
                                                     manager: ModelManager) -> None:
    _op, ok, message = wait_done(qtbot, manager, lambda: manager.sample_to("alpha", tmp_path / "unet.png"))
    assert not ok and "no prior to draw images from" in message and not (tmp_path / "unet.png").exists()
    (tmp_path / "taken.png").write_bytes(b"precious")
    _op, ok, message = wait_done(qtbot, manager, lambda: manager.sample_to("dreamer", tmp_path / "taken.png"))
    assert not ok and "already exists" in manager.last_error
    assert (tmp_path / "taken.png").read_bytes() == b"precious"


# --- details --------------------------------------------------------------------------------------------------


def test_details_show_the_description_and_validation_figures(manager: ModelManager) -> None:
    manager.select("alpha")
    text = manager.details_text()
    for expected in ("Family: unet", "a test model", "synthetic squares", "denoiser train --steps 10",
                     "2 min 05 s", "10 steps", "psnr: 30.5", "metric: val_psnr", "best: 30.5", "start: 24.25",
                     "gain: 6.25", "widths: [4, 8]", str(user_models_dir() / "alpha.safetensors")):
        assert expected in text, expected
    assert "from 24.25 at the start to 30.5 at best (gain +6.25 dB)" in text
    assert "val_loss" in manager.details_text("beta")
    manager.details_button.click()
    assert manager.details_button.isChecked() and not manager.details.isHidden()
    assert manager.details.toPlainText() == text
    manager.select("beta")
    assert "noisy phone photos" in manager.details.toPlainText()
    manager.details_button.click()
    assert manager.details.isHidden()


@pytest.mark.skipif(not HAS_DEFAULT, reason="resources/models/default.safetensors is not in this checkout")
def test_details_of_the_bundled_default(manager: ModelManager) -> None:
    text = manager.details_text("default")
    assert "bundled" in text and "Training command: denoiser train" in text and "psnr:" in text


# --- what each validation figure was measured on (issue 14) ---------------------------------------------------


def test_validation_figures_say_what_they_were_measured_on(qtbot: QtBot, bridge: WorkerBridge) -> None:
    synthetic = ModelInfo(name="synthetic", family="", config={}, trained_on="clean photos",
                          training={"mode": "synthetic"},
                          validation={"psnr": 30.86, "metric": "val_psnr", "sigma": 25.0, "protocols": ["clipped"],
                                      "split": "seeded 10% held out"})
    pairs = ModelInfo(name="pairs", family="", config={}, trained_on="camera pairs", training={"mode": "pairs"},
                      validation={"psnr": 39.52, "metric": "val_psnr", "split": "seeded 10% held out"})
    save_to_library(tiny(0), "synthetic", synthetic)
    save_to_library(tiny(1), "pairs", pairs)
    manager = ModelManager(bridge)
    qtbot.addWidget(manager)
    assert cell(manager, "synthetic", "Validation") == "30.86 dB (\u03c325 synthetic, own held-out photos)"
    assert cell(manager, "pairs", "Validation") == "39.52 dB (own held-out camera pairs)"
    column = model_manager_module.COLUMNS.index("Validation")
    tip = manager.table.item(manager.names().index("synthetic"), column).toolTip()
    assert "synthetic Gaussian noise at sigma 25" in tip and "not comparable" in tip
    tip = manager.table.item(manager.names().index("pairs"), column).toolTip()
    assert "camera pairs" in tip and "not comparable" in tip
    assert "not comparable" in manager.table.horizontalHeaderItem(column).toolTip()
    assert "synthetic Gaussian noise at sigma 25" in manager.details_text("synthetic")
    # What older files and self-supervised runs record.
    assert validation_text({"psnr": 30.5}) == "30.50 dB"  # nothing recorded: no claim
    assert validation_text({"psnr": 30.861, "sigma": 25.0, "protocol": "held-out split, seeded noise"}) == (
        "30.86 dB (\u03c325 synthetic, own held-out photos)")
    noisy = validation_text({"metric": "val_loss", "best": 0.0123}, {"mode": "noisy"})
    assert noisy == "val_loss 0.0123 (noisy photos)"
    if HAS_DEFAULT:
        assert cell(manager, "default", "Validation").endswith(" dB (\u03c325 synthetic, own held-out photos)")


# --- what users read about the bundled models names no development path or machine (issue 14, item 6) -----------

DEVELOPMENT_TRACES = re.compile(r"\.\./|/tmp/|/home/|/root/|/work/|/Users/|[A-Za-z]:\\|shared/data|\$OUT|\bruns/")
"""A relative or absolute path of the machine a model was trained on, or a shell variable of its scripts."""


def _strings(value: object) -> list[str]:
    """Every string in a JSON-like value, its keys too."""
    if isinstance(value, dict):
        return [*map(str, value), *(text for item in value.values() for text in _strings(item))]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


def test_development_traces_are_recognised() -> None:
    for trace in ("--clean ../shared/data/train/cbsd432", "--checkpoint /tmp/denoiser-gpu/gauss", "runs/mix-2",
                  "--out $OUT/default.safetensors", "C:\\data\\train"):
        assert DEVELOPMENT_TRACES.search(trace), trace
    assert not DEVELOPMENT_TRACES.search("denoiser train --clean CBSD432 --add-pairs POLYU --from RUN3")


@pytest.mark.skipif(not HAS_DEFAULT, reason="resources/models/default.safetensors is not in this checkout")
def test_the_bundled_models_description_names_no_development_path_or_machine(manager: ModelManager) -> None:
    from denoiser.modelstore import model_info
    from ui.torch_parts import model_note

    info = model_info("default")
    shown = [line for line in manager.details_text("default").splitlines() if not line.startswith("File: ")]
    read = [*shown, model_note(info), *_strings(info.description), *_strings(info.trained_on),
            *_strings(info.training), *_strings(info.validation)]
    estimator = bundled_estimator_dir() / "noise-map.safetensors"
    if estimator.is_file():
        from safetensors import safe_open

        with safe_open(str(estimator), "np") as handle:
            read += _strings({key: json.loads(text) for key, text in (handle.metadata() or {}).items()})
    machine = socket.gethostname()
    for text in read:
        assert not DEVELOPMENT_TRACES.search(text), text
        assert machine not in text or len(machine) < 4, text
    keys = {key.lower() for key in _strings(info.training) if key in info.training}
    assert not keys & {"host", "hostname", "machine", "node", "user"}
