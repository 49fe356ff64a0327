"""The app without PyTorch (issue 16), as the desktop bundle runs it: in a fresh interpreter where ``import torch``
fails and the bundled resources hold the exported graphs, it opens a photo, denoises it on its own through ONNX
Runtime, shows every view, follows a strength change, saves, runs a batch, and says that training and the model
library need PyTorch, all without importing a real torch (the scenario is ``without_torch_driver.py``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage
from without_torch_driver import REPORT_MARK

from denoiser.onnx_export import export_bundle_assets
from denoiser.resources import resources_dir
from ui.torch_parts import LATENTS_NEED_PYTORCH, NEEDS_PYTORCH

DRIVER = Path(__file__).with_name("without_torch_driver.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 90


@pytest.fixture(scope="module")
def bundle_resources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of resources/ with the default model's and the estimator's exported graphs in it, as the bundle
    ships them (exported once, here, where torch is installed)."""
    folder = tmp_path_factory.mktemp("bundle") / "resources"
    shutil.copytree(resources_dir(), folder, ignore=shutil.ignore_patterns("samples"))  # a photo is given
    export_bundle_assets(folder)
    return folder


def noisy_photo(path: Path, seed: int) -> Path:
    """A small gradient with strong noise on it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:48, 0:64]
    clean = np.stack([x * 3, y * 4, (x + y) * 2], axis=2).clip(20, 230)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def run_without_torch(bundle_resources: Path, tmp_path_factory: pytest.TempPathFactory
                      ) -> tuple[dict[str, Any], str, Path]:
    """Run the scenario once: its report, its stderr and its working folder."""
    work = tmp_path_factory.mktemp("without-torch")
    photo = noisy_photo(work / "photos" / "photo.png", seed=0)
    noisy_photo(work / "batch-in" / "one.png", seed=1)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DENOISER_HOME": str(work / "home"),
           "DENOISER_LOG_DIR": str(work / "logs"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, str(DRIVER), str(bundle_resources), str(photo), str(work / "batch-in"),
         str(work / "batch-out"), str(work / "settings.ini")],
        capture_output=True, text=True, timeout=TIMEOUT_S, env=env, cwd=REPO_ROOT)
    lines = [line for line in result.stdout.splitlines() if line.startswith(REPORT_MARK)]
    assert result.returncode == 0 and lines, result.stdout + result.stderr
    return json.loads(lines[-1].removeprefix(REPORT_MARK)), result.stderr, work


def test_the_core_loop_runs_on_the_exported_model(run_without_torch: tuple[dict[str, Any], str, Path]) -> None:
    report, stderr, work = run_without_torch
    assert report["stage"] == "done" and not report.get("timed_out"), report
    assert report["model_type"] == "ExportedModel" and report["model_name"] == "default"
    assert report["chooser"] == ["default"] and report["devices"] == ["auto", "cpu"]
    assert "ONNX Runtime" in report["model_note"]
    assert report["estimate_method"] == "network"  # auto strength read by the exported estimator
    assert all(report["modes"].values()) and set(report["modes"]) == {"side", "split", "toggle", "residual", "noise"}
    assert report["first_strength"] != report["second_strength"]  # the strength change was denoised again
    saved = Path(report["saved"])
    assert saved.parent == work / "photos" and saved.is_file()
    before = np.asarray(PILImage.open(work / "photos" / "photo.png"), dtype=np.float32)
    after = np.asarray(PILImage.open(saved), dtype=np.float32)
    assert after.shape == before.shape and np.abs(after - before).mean() > 2  # denoised, not copied
    assert report["batch_models"] == ["default"] and report["batch_started"]
    assert report["batch"] is not None and report["batch"]["done"] == 1 and report["batch"]["failed"] == 0
    assert all(Path(output).is_file() for output in report["batch"]["outputs"])
    assert report["last_error"] == ""
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    logs = "".join(p.read_text(errors="replace") for p in (work / "logs").rglob("*") if p.is_file())
    assert "Traceback" not in logs, logs


def test_the_torch_only_parts_say_they_need_pytorch(run_without_torch: tuple[dict[str, Any], str, Path]) -> None:
    report, _, _ = run_without_torch
    for name in ("train", "manage"):
        action = report["actions"][name]
        assert not action["enabled"] and "(needs PyTorch)" in action["text"], action
        assert NEEDS_PYTORCH in action["tooltip"], action
    assert report["train_dialog"] == "None" and NEEDS_PYTORCH in report["train_status"]
    assert report["manager_dialog"] == "None" and NEEDS_PYTORCH in report["manager_status"]
    assert report["latents_caption"] == LATENTS_NEED_PYTORCH and report["latent_thumbnails"] == 0


def test_no_real_torch_was_ever_imported(run_without_torch: tuple[dict[str, Any], str, Path]) -> None:
    report, _, _ = run_without_torch
    assert report["torch_module"] == "None"  # still the block: nothing replaced it with the real one
    assert report["torch_modules"] == [] and report["torch_engine_modules"] == []
