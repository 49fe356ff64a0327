"""The manifest under failures, crashes and other writers (issue 13, findings 1-3), in one process.

The drills with real processes (concurrent writers, kill -9 at random moments) are in tests/e2e/test_batch_drills.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import denoiser.batch.single as batch_single
from denoiser.batch import BatchSettings, Manifest, file_sha256, run_batch
from denoiser.batch.manifest import JOURNAL_NAME, LOCK_NAME, MANIFEST_NAME, new_owner, owner_is_live
from denoiser.inference import TileSettings
from denoiser.models import create_model


@pytest.fixture
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("unet", {"widths": [4, 8], "blocks": 1})


def write_photo(path: Path, seed: int, size: tuple[int, int] = (40, 30)) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels).save(path)
    return path


def settings(src: Path, out: Path, **changes: object) -> BatchSettings:
    values: dict[str, object] = {"strength": 15.0, "tiles": TileSettings(tile=32, overlap=8), "device": "cpu"}
    values.update(changes)
    return BatchSettings(inputs=[src], output=out, **values)  # type: ignore[arg-type]


def fail_every_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> np.ndarray:
        raise RuntimeError("CUDA error: no kernel image is available")

    monkeypatch.setattr(batch_single, "denoise_array", broken)


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_failed_run_keeps_the_done_entries(tmp_path: Path, tiny_model: torch.nn.Module,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 2: a run where every file failed (a wrong device, other settings) made the rerun redo them all."""
    src, out = tmp_path / "in", tmp_path / "out"
    for i in range(3):
        write_photo(src / f"{i}.png", i)
    assert run_batch(settings(src, out), tiny_model, "tiny").done == 3
    with monkeypatch.context() as patch:
        fail_every_file(patch)
        assert run_batch(settings(src, out, strength=20.0, redo=True), tiny_model, "tiny").failed == 3
    entries = Manifest.load(out).entries
    assert {e["status"] for e in entries.values()} == {"done"}
    assert all("CUDA error" in e["last_failure"]["message"] for e in entries.values())
    rerun = run_batch(settings(src, out), tiny_model, "tiny")
    assert (rerun.done, rerun.skipped) == (0, 3)
    assert sorted(p.name for p in out.glob("*.png")) == ["0_denoised.png", "1_denoised.png", "2_denoised.png"]


def test_outputs_in_the_input_folder_are_never_taken_as_inputs_after_a_failed_run(
        tmp_path: Path, tiny_model: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 2: output folder = input folder, a failed run, a rerun: x_denoised_denoised.png appeared."""
    src = tmp_path / "photos"
    write_photo(src / "x.png", 1)
    assert run_batch(settings(src, src), tiny_model, "tiny").done == 1
    with monkeypatch.context() as patch:
        fail_every_file(patch)
        run_batch(settings(src, src), tiny_model, "tiny")
    rerun = run_batch(settings(src, src), tiny_model, "tiny")
    assert [(r.source.name, r.status) for r in rerun.results] == [("x.png", "skipped")]
    redo = run_batch(settings(src, src, strength=20.0, redo=True), tiny_model, "tiny")
    assert [r.source.name for r in redo.results] == ["x.png"]
    assert sorted(p.name for p in src.glob("*.png")) == ["x.png", "x_denoised-2.png", "x_denoised.png"]


def test_a_stale_claim_whose_output_landed_is_adopted_not_redone(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """Finding 3: killed between an output's rename and the manifest save, the rerun wrote 6_denoised-2.tif."""
    src, out = tmp_path / "in", tmp_path / "out"
    photo = write_photo(src / "6.png", 6)
    whole = tmp_path / "whole"
    run_batch(settings(src, whole), tiny_model, "tiny")
    expected = (whole / "6_denoised.png").read_bytes()
    # What a process killed right after the rename leaves: its claim (with the output's hash) and the output.
    out.mkdir()
    (out / "6_denoised.png").write_bytes(expected)
    (out / ".6_denoised.tmp-0badc0de.png").write_bytes(b"half an encoded file")
    entry = dict(Manifest.load(whole).get(photo) or {})
    owner = {**new_owner("gone"), "pid": dead_pid()}
    assert not owner_is_live(owner)
    with Manifest(out).locked() as manifest:
        manifest.put(photo, {**entry, "status": "running", "owner": owner, "output": str(out / "6_denoised.png"),
                             "output_sha256": file_sha256(out / "6_denoised.png"), "previous": None})
    rerun = run_batch(settings(src, out), tiny_model, "tiny")
    assert (rerun.done, rerun.skipped) == (0, 1) and rerun.results[0].resumed
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "6_denoised.png", MANIFEST_NAME]
    assert Manifest.load(out).get(photo)["status"] == "done"


def test_a_stale_claim_without_its_output_is_done_again_under_the_name_it_reserved(
        tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    photo = write_photo(src / "a.png", 2)
    out.mkdir()
    (out / ".a_denoised.tmp-12345678.png").write_bytes(b"killed while encoding")
    with Manifest(out).locked() as manifest:
        manifest.put(photo, {"status": "running", "owner": {**new_owner("gone"), "pid": dead_pid()},
                             "output": str(out / "a_denoised.png"), "output_sha256": None, "previous": None})
    result = run_batch(settings(src, out), tiny_model, "tiny").results[0]
    assert result.status == "done" and result.output == out / "a_denoised.png"
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "a_denoised.png", MANIFEST_NAME]


def test_an_input_another_live_process_claimed_is_left_to_it(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    taken, free = write_photo(src / "a.png", 1), write_photo(src / "b.png", 2)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Manifest(out).locked() as manifest:
            manifest.put(taken, {"status": "running", "owner": {**new_owner("theirs"), "pid": other.pid},
                                 "output": str(out / "b_denoised.png"), "previous": None})
        report = run_batch(settings(src, out), tiny_model, "tiny")
    finally:
        other.kill()
        other.wait()
    by_name = {r.source.name: r for r in report.results}
    assert by_name["a.png"].status == "skipped" and f"process {other.pid}" in by_name["a.png"].message
    # The name the other process reserved is not taken by this one either.
    assert by_name["b.png"].output == out / "b_denoised-2.png"
    assert Manifest.load(out).get(taken)["status"] == "running"  # still theirs
    assert Manifest.load(out).get(free)["status"] == "done"


def test_a_torn_last_journal_line_is_ignored_and_later_lines_still_count(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    with Manifest(out).locked() as manifest:
        manifest.put(a, {"status": "done", "output": None})
    with open(out / JOURNAL_NAME, "ab") as journal:
        journal.write(b'{"key": "half a li')  # a writer killed while appending
    assert set(Manifest.load(out).entries) == {str(a.resolve())}
    with Manifest(out).locked() as manifest:
        manifest.put(b, {"status": "failed", "output": None})
    assert set(Manifest.load(out).entries) == {str(a.resolve()), str(b.resolve())}
    Manifest(out).compact()
    assert not (out / JOURNAL_NAME).exists()
    data = json.loads((out / MANIFEST_NAME).read_text())
    assert set(data["files"]) == {str(a.resolve()), str(b.resolve())} and data["version"] == 2


def test_a_version_1_manifest_still_resumes(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 1)
    run_batch(settings(src, out), tiny_model, "tiny")
    data = json.loads((out / MANIFEST_NAME).read_text())
    data["version"] = 1
    del data["outputs"]
    (out / MANIFEST_NAME).write_text(json.dumps(data))
    assert run_batch(settings(src, out), tiny_model, "tiny").skipped == 1


def test_leftover_manifest_temporaries_are_cleaned(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """Finding 3: hidden temporary files of killed runs were never cleaned."""
    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 1)
    out.mkdir()
    (out / ".denoiser-manifest.tmp-0a1b2c3d.json").write_text("{")
    run_batch(settings(src, out), tiny_model, "tiny")
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "a_denoised.png", MANIFEST_NAME]
