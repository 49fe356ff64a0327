"""Denoising without PyTorch (issue 16: the desktop bundle leaves it out): the bundled model and the noise-map
estimator run from their exported graphs, give torch's result, and what needs torch says so."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from denoiser.batch import BatchSettings, run_batch
from denoiser.modelstore import load_model
from denoiser.noise import add_gaussian_noise
from denoiser.onnx_export import export_bundle_assets
from denoiser.resources import resources_dir

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
import json, sys
sys.modules["torch"] = None  # "import torch" now raises ImportError, as in the bundle
from pathlib import Path
import denoiser.resources
denoiser.resources.resources_dir = lambda: Path(sys.argv[1])
from denoiser.batch import BatchSettings, run_batch
from denoiser.devices import resolve_device
from denoiser.errors import DenoiserError
from denoiser.model_loading import load_model_for_inference
answers = {}
for device in ("cuda", "mps"):
    try:
        resolve_device(device)
    except DenoiserError as err:
        answers[device] = str(err)
try:
    load_model_for_inference("my-own-model")
except DenoiserError as err:
    answers["other model"] = str(err)
model, info = load_model_for_inference("default")
report = run_batch(BatchSettings(inputs=[Path(sys.argv[2])], output=Path(sys.argv[3])), model, info.name)
answers["results"] = [(r.status, r.sigma, r.message) for r in report.results]
answers["torch"] = [name for name, module in sys.modules.items() if name.startswith("torch") and module is not None]
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def bundle_resources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of resources/ with the exported graphs in it, as the bundle has it."""
    folder = tmp_path_factory.mktemp("bundle") / "resources"
    shutil.copytree(resources_dir(), folder, ignore=shutil.ignore_patterns("samples"))
    export_bundle_assets(folder)
    return folder


def noisy_photo(path: Path) -> Path:
    y, x = np.mgrid[0:72, 0:96]
    clean = np.stack([x * 2, y * 3, (x + y)], axis=2).clip(20, 230).astype(np.uint8)
    PILImage.fromarray(add_gaussian_noise(clean, 20, 3)).save(path)
    return path


def test_the_bundled_model_denoises_without_torch_as_with_it(tmp_path: Path, bundle_resources: Path) -> None:
    photo = noisy_photo(tmp_path / "photo.png")
    process = subprocess.run([sys.executable, "-c", DRIVER, str(bundle_resources), str(photo), str(tmp_path / "out")],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert process.returncode == 0, process.stderr
    answers = json.loads(process.stdout.strip().splitlines()[-1])
    assert answers["torch"] == []
    assert "PyTorch" in answers["cuda"] and "PyTorch" in answers["mps"]
    assert "my-own-model" in answers["other model"] and "PyTorch" in answers["other model"]
    [(status, sigma, message)] = answers["results"]
    assert status == "done", message

    model, info = load_model("default")
    with_torch = run_batch(BatchSettings(inputs=[photo], output=tmp_path / "torch"), model, info.name)
    assert with_torch.results[0].sigma == pytest.approx(sigma, rel=1e-3)  # the exported estimator reads the same
    ours = np.asarray(PILImage.open(tmp_path / "out" / "photo_denoised.png"), dtype=int)
    theirs = np.asarray(PILImage.open(tmp_path / "torch" / "photo_denoised.png"), dtype=int)
    assert np.abs(ours - theirs).max() <= 1


CLI = """
import sys
sys.modules["torch"] = None
from pathlib import Path
import denoiser.resources
denoiser.resources.resources_dir = lambda: Path(sys.argv[1])
from denoiser.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_cli(resources: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, str(resources), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_the_cli_denoises_without_torch_and_says_what_needs_it(tmp_path: Path, bundle_resources: Path) -> None:
    photo = noisy_photo(tmp_path / "photo.png")
    done = run_cli(bundle_resources, "denoise", str(photo), "-o", str(tmp_path / "out"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"][0]["status"] == "done"
    assert (tmp_path / "out" / "photo_denoised.png").is_file()
    training = run_cli(bundle_resources, "train", "--clean", str(tmp_path), "--name", "mine")
    assert training.returncode != 0 and "needs PyTorch" in training.stderr and "Traceback" not in training.stderr
