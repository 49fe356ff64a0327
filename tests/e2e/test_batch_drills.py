"""Drills with real processes (issue 13): batches writing into one folder at once, and batches killed with
SIGKILL at random moments, many times over, then finished. What must hold: every input denoised exactly once,
no partial or temporary file left, nothing lost from the manifest, and the outputs byte-identical to those of an
uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.batch import Manifest
from denoiser.batch.manifest import LOCK_NAME, MANIFEST_NAME
from denoiser.modelfile import save_model
from denoiser.models import create_model

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")

ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
import sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from denoiser.batch import BatchSettings, run_batch
from denoiser.inference import TileSettings
from denoiser.modelfile import load_model_file

model_path, out, barrier, *inputs = sys.argv[1:]
model, _ = load_model_file(model_path)
settings = BatchSettings(inputs=[Path(p) for p in inputs], output=Path(out), strength=20.0, device="cpu",
                         tiles=TileSettings(tile=32, overlap=8))
print("ready", flush=True)
while not Path(barrier).exists():
    time.sleep(0.005)
report = run_batch(settings, model, "tiny")
print(report.done, report.skipped, report.failed, flush=True)
"""


def write_photos(folder: Path, count: int, seed: int, size: int = 64) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        pixels = np.random.default_rng(seed + i).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        paths.append(folder / f"{i}.png")
        PILImage.fromarray(pixels).save(paths[-1])
    return paths


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model(create_model("unet", {"widths": [4, 8], "blocks": 1}), tmp_path / "tiny.safetensors")


def start(model: Path, out: Path, barrier: Path, *inputs: Path) -> subprocess.Popen[str]:
    """A batch process, waiting at the barrier once its imports are done (so that the runs overlap)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", DRIVER, str(model), str(out), str(barrier),
                                *map(str, inputs)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=ROOT)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.stderr else ""
    return process


def run_together(model: Path, out: Path, barrier: Path, groups: list[list[Path]]) -> list[str]:
    processes = [start(model, out, barrier, *group) for group in groups]
    barrier.touch()
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        outputs.append(stdout.strip())
    barrier.unlink()
    return outputs


def visible_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def assert_clean(out: Path, inputs: list[Path]) -> None:
    """Every input done exactly once and recorded; no temporary file; the journal folded in."""
    hidden = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert hidden == [LOCK_NAME]
    entries = Manifest.load(out).entries
    assert sorted(entries) == sorted(str(p.resolve()) for p in inputs)
    assert {e["status"] for e in entries.values()} == {"done"}
    outputs = [Path(e["output"]) for e in entries.values()]
    assert len(set(outputs)) == len(inputs) and all(p.is_file() for p in outputs)
    assert len([n for n in visible_files(out) if n != MANIFEST_NAME]) == len(inputs)  # no stray copies


@pytest.mark.parametrize("writers", [2, 4])
def test_the_same_batch_started_several_times_at_once_denoises_each_photo_once(
        tmp_path: Path, model_file: Path, writers: int) -> None:
    """Finding 1: the same command twice at once left every entry "failed" and the rerun wrote -2 copies."""
    src, out = tmp_path / "in", tmp_path / "out"
    photos = write_photos(src, 8, seed=0)
    lines = run_together(model_file, out, tmp_path / "go", [[src]] * writers)
    done = [int(line.split()[0]) for line in lines]
    assert sum(done) == len(photos)  # shared out, none twice
    assert all(int(line.split()[2]) == 0 for line in lines)  # no failures
    assert_clean(out, photos)
    assert visible_files(out) == sorted([f"{i}_denoised.png" for i in range(8)] + [MANIFEST_NAME])


def test_two_batches_of_different_folders_into_one_output_folder_lose_no_entry(tmp_path: Path,
                                                                             model_file: Path) -> None:
    """Finding 1: two batches into one folder both reported 9 done; the manifest held 9 of 18."""
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    photos = write_photos(a, 6, seed=0) + write_photos(b, 6, seed=10)  # the same names: 0.png ... 5.png twice
    run_together(model_file, out, tmp_path / "go", [[a], [b]])
    assert_clean(out, photos)
    rerun = run_together(model_file, out, tmp_path / "go", [[b]])
    assert rerun == ["0 6 0"]  # all of B is known as done


def test_killed_at_random_moments_many_times_the_batch_still_ends_as_an_uninterrupted_one(
        tmp_path: Path, model_file: Path) -> None:
    """Finding 3: kill -9 between an output's rename and the manifest save gave -2 copies and stale temporaries."""
    src = tmp_path / "in"
    photos = write_photos(src, 12, seed=0, size=96)
    whole = tmp_path / "whole"
    run_together(model_file, whole, tmp_path / "go", [[src]])
    expected = {p.name: p.read_bytes() for p in whole.glob("*.png")}

    out, barrier = tmp_path / "out", tmp_path / "go"
    rng = random.Random(13)
    started = time.monotonic()
    kills = 0
    while kills < 10 and time.monotonic() - started < 120:
        process = start(model_file, out, barrier, src)
        before = set(out.glob("*.png")) if out.is_dir() else set()
        barrier.touch()
        # Anywhere within the next two outputs, or (every other run) the narrowest window: right after an output
        # took its name, before the manifest knows. Bounding each run's progress keeps a fast machine from
        # finishing the batch before the drill has killed it a few times.
        deadline = time.monotonic() + (rng.uniform(0.0, 0.6) if kills % 2 else 5.0)
        outputs_before_kill = 2 if kills % 2 else 1
        while time.monotonic() < deadline and process.poll() is None:
            if out.is_dir() and len(set(out.glob("*.png")) - before) >= outputs_before_kill:
                break
            time.sleep(0.0005)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        barrier.unlink()
        if process.returncode == 0:
            break  # the batch finished: nothing left to interrupt
        kills += process.returncode == -signal.SIGKILL
    assert kills >= 3  # the drill killed runs mid-way, not only finished ones
    run_together(model_file, out, barrier, [[src]])
    assert_clean(out, photos)
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == expected
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert len(manifest["files"]) == len(photos)
