"""A batch on a Ray cluster (``denoise --ray``), on one machine: the same outputs and manifest as the local batch,
a worker killed mid-batch, a rerun with nothing to do, and without Ray a clear word on how to get it.

One local Ray instance (two CPUs) serves the whole module; tests that need none run without Ray installed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image as PILImage
from pytestqt.qtbot import QtBot

from denoiser.batch import MANIFEST_NAME, BatchSettings, FileResult, model_fingerprint, run_batch
from denoiser.batch.ray_pool import RayCluster, plan_workers, ray_available
from denoiser.batch.ray_run import RayBatchRun, run_ray_batch
from denoiser.batch.ray_worker import FileDenoiser
from denoiser.cli import main
from denoiser.cli_common import EXIT_ERROR, EXIT_SOME_FAILED
from denoiser.errors import DenoiserError
from denoiser.inference import TileSettings
from denoiser.model_loading import load_model_for_inference
from denoiser.modelfile import save_model
from denoiser.models import create_model
from denoiser.progress import Progress
from ui.worker import WorkerBridge

TWO_WORKERS = RayCluster(workers=2, cpus_per_worker=1)
SETTINGS = ["--strength", "15", "--tile", "32", "--overlap", "8", "--device", "cpu"]


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    """One local Ray instance of two CPUs for the module (starting one takes seconds)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture
def tiny_model_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model(create_model("unet", {"widths": [4, 8], "blocks": 1}), tmp_path / "tiny.safetensors")


def photos(folder: Path, big: bool = False) -> list[Path]:
    """Six small photos of four formats (8-bit PNG and JPEG, 16-bit TIFF, a PNG named .jpg) and a corrupt file;
    ``big``: the first (by name) is large enough to be mid-denoising for a while."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def pixels(height: int, width: int, dtype: type = np.uint8) -> np.ndarray:
        return rng.integers(0, np.iinfo(dtype).max + 1, (height, width, 3), dtype=dtype)

    PILImage.fromarray(pixels(480, 640) if big else pixels(30, 40)).save(folder / "a.png")
    for name in ("b.png", "c.png"):
        PILImage.fromarray(pixels(30, 40)).save(folder / name)
    PILImage.fromarray(pixels(28, 36)).save(folder / "d.jpg", quality=90)
    tifffile.imwrite(folder / "e.tif", pixels(24, 32, np.uint16))
    PILImage.fromarray(pixels(30, 40)).save(folder / "f.jpg", format="PNG")  # its extension says otherwise
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but nothing after")
    return sorted(folder.iterdir())


def taken_name(out: Path) -> None:
    """An output name taken before the batch: the collision policy (unique) makes ``b_denoised-2.png``."""
    out.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(np.zeros((4, 4, 3), np.uint8)).save(out / "b_denoised.png")


def settings(src: Path, out: Path) -> BatchSettings:
    return BatchSettings(inputs=[src], output=out, strength=15.0, tiles=TileSettings(tile=32, overlap=8),
                         device="cpu")


def outputs(out: Path) -> dict[str, bytes]:
    """Every file in ``out`` but the manifest's own (temporary files and ``-2`` copies included), with its bytes."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and not p.name.startswith((".denoiser-manifest", "denoiser-manifest"))}


def manifest_facts(out: Path) -> dict[str, dict[str, Any]]:
    """What the manifest says of each input, less what differs from run to run (times, output folder)."""
    data = json.loads((out / MANIFEST_NAME).read_text())
    facts = {}
    for key, entry in data["files"].items():
        kept = {k: v for k, v in entry.items() if k not in ("seconds", "finished")}
        kept["output"] = Path(entry["output"]).name if entry.get("output") else None
        facts[key] = kept
    return facts


@pytest.mark.slow
def test_a_ray_batch_writes_what_the_local_batch_writes_and_a_rerun_starts_no_worker(
        ray_session: Any, tmp_path: Path, tiny_model_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    photos(src)
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    taken_name(local)
    taken_name(on_ray)
    model = ["--model", str(tiny_model_file)]
    assert main(["denoise", str(src), "-o", str(local), *model, *SETTINGS]) == EXIT_SOME_FAILED  # broken.png
    assert main(["denoise", str(src), "-o", str(on_ray), *model, *SETTINGS, "--ray", "--ray-workers", "2",
                 "--cpus-per-worker", "1"]) == EXIT_SOME_FAILED
    stderr = capsys.readouterr().err
    assert "Ray: 2 worker(s) of 1 CPU core(s) each on 1 machine(s)" in stderr
    assert "broken.png" in stderr

    assert outputs(on_ray) == outputs(local)  # byte for byte, the -2 name included, no temporary left
    assert "b_denoised-2.png" in outputs(on_ray)
    assert manifest_facts(on_ray) == manifest_facts(local)
    statuses = sorted(entry["status"] for entry in manifest_facts(on_ray).values())
    assert statuses == ["done"] * 6 + ["failed"]

    (src / "broken.png").unlink()
    events: list[Progress] = []
    model_obj, info = load_model_for_inference(tiny_model_file)
    report = run_ray_batch(settings(src, on_ray), model_obj, info.name, info.path, TWO_WORKERS,
                           on_progress=events.append)
    assert [(r.status, r.resumed) for r in report.results] == [("skipped", True)] * 6
    assert not [e for e in events if e.stage == "workers"]  # nothing to do: no worker started
    assert events[-1].done == events[-1].total == 6
    assert outputs(on_ray) == outputs(local)


def cpu_seconds(pid: int) -> float:
    """CPU time process ``pid`` has used (Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_busy(pid: int, cpu: float = 0.1, timeout: float = 30.0) -> None:
    """Wait until process ``pid`` has worked ``cpu`` seconds more (so it is in the middle of a file), however
    busy the machine; where there is no /proc, a moment."""
    if not Path(f"/proc/{pid}/stat").exists():
        time.sleep(0.5)
        return
    start, deadline = cpu_seconds(pid), time.monotonic() + timeout
    while cpu_seconds(pid) - start < cpu and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_only_its_file(ray_session: Any, tmp_path: Path,
                                                       tiny_model_file: Path) -> None:
    src = tmp_path / "src"
    files = photos(src, big=True)
    (src / "broken.png").unlink()
    model, info = load_model_for_inference(tiny_model_file)
    run_batch(settings(src, tmp_path / "local"), model, info.name)

    events: list[Progress] = []
    pids: list[int] = []
    killed: list[int] = []

    def on_progress(event: Progress) -> None:
        events.append(event)
        if event.stage == "workers":
            pids.extend(worker.pid for worker in event.extra["workers"])
        # The second file is being handed out: the first worker has the big first file; kill it once busy on it.
        if event.stage == "files" and event.message == "b.png" and "result" not in event.extra and not killed:
            wait_until_busy(pids[0])
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    report = run_ray_batch(settings(src, tmp_path / "ray"), model, info.name, info.path, TWO_WORKERS,
                           on_progress=on_progress)
    assert killed
    lost = [e.message for e in events if e.stage == "tiles" and "was lost" in e.message]
    assert any("denoising a.png was lost" in note for note in lost), lost
    assert sorted(r.source.name for r in report.results) == sorted(f.name for f in files if f.exists())
    assert {r.status for r in report.results} == {"done"}
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")  # each once: no -2 copy, no temporary
    assert manifest_facts(tmp_path / "ray") == manifest_facts(tmp_path / "local")
    assert events[-1].done == events[-1].total == 6 and events[-1].extra["eta"] == 0


@pytest.mark.slow
def test_a_driver_stopped_dead_mid_batch_is_resumed_from_the_manifest(ray_session: Any, tmp_path: Path,
                                                                       tiny_model_file: Path) -> None:
    """Stopped right after an output took its name, before it was recorded, with other files in flight: the next
    run (here the local batch) adopts that output and denoises the rest, each once."""
    src = tmp_path / "src"
    photos(src)
    (src / "broken.png").unlink()
    model, info = load_model_for_inference(tiny_model_file)
    run_batch(settings(src, tmp_path / "local"), model, info.name)
    conclude = RayBatchRun.conclude
    recorded: list[str] = []

    def stopped_dead_at_the_third(run: RayBatchRun, result: FileResult, record: bool, claim: Any) -> FileResult:
        if result.status == "done" and len(recorded) == 2:
            raise KeyboardInterrupt  # as SIGKILL would: nothing after this line runs
        recorded.append(result.source.name)
        return conclude(run, result, record, claim)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RayBatchRun, "conclude", stopped_dead_at_the_third)
        patch.setattr(RayBatchRun, "release_claims", lambda run: None)  # a killed driver gives nothing back
        with pytest.raises(KeyboardInterrupt):
            run_ray_batch(settings(src, tmp_path / "ray"), model, info.name, info.path, TWO_WORKERS)
    left = json.loads((tmp_path / "ray" / MANIFEST_NAME).read_text())["files"]
    claims = [entry for entry in left.values() if entry["status"] == "running"]
    assert len(claims) >= 2 and sum(1 for entry in claims if entry["output_sha256"]) == 1

    report = run_batch(settings(src, tmp_path / "ray"), model, info.name)
    adopted = [r.source.name for r in report.results if r.resumed]
    assert len(adopted) == 3 and set(recorded) < set(adopted)  # the two recorded and the one placed
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")  # no -2 copy, no temporary left
    assert {entry["status"] for entry in manifest_facts(tmp_path / "ray").values()} == {"done"}


def test_without_ray_the_command_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as where it is not installed
    photos(tmp_path / "src")
    assert not ray_available()
    assert main(["denoise", str(tmp_path / "src"), "-o", str(tmp_path / "out"), "--ray"]) == EXIT_ERROR
    assert "pip install 'denoiser[cluster]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing done, no model loaded
    with pytest.raises(SystemExit):
        main(["denoise", "--help"])
    assert "Ray is not installed here: pip install 'denoiser[cluster]'" in " ".join(capsys.readouterr().out.split())


def test_ray_options_need_ray_and_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos(tmp_path / "src")
    assert main(["denoise", str(tmp_path / "src"), "-o", str(tmp_path / "out"), "--ray-workers", "2"]) == EXIT_ERROR
    assert "apply only with --ray" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_status:
        main(["denoise", str(tmp_path / "src" / "b.png"), "-o", str(tmp_path / "b.png"), "--ray"])
    assert exit_status.value.code == 2
    assert "--ray runs a batch into a folder" in capsys.readouterr().err


def test_a_worker_encodes_what_the_local_batch_writes_and_says_what_it_cannot_do(tmp_path: Path,
                                                                                  tiny_model_file: Path) -> None:
    """The worker's job in-process (no Ray): the bytes of the local batch's output, failures as messages."""
    src = tmp_path / "src"
    photos(src)
    model, info = load_model_for_inference(tiny_model_file)
    run_batch(settings(src, tmp_path / "local"), model, info.name)
    worker_settings = settings(src, tmp_path / "unused")
    worker_settings.tiles = TileSettings(tile=32, overlap=8, engine="torch")
    worker = FileDenoiser(str(tiny_model_file), info.name, model_fingerprint(model), worker_settings, threads=1)
    assert worker.info().problem == ""
    encoded = worker.denoise(src / "f.jpg", tmp_path / "out" / "f_denoised.png")
    assert encoded.data == (tmp_path / "local" / "f_denoised.png").read_bytes()
    assert "format_kept" in [finding["code"] for finding in encoded.findings]
    failed = worker.denoise(src / "broken.png", tmp_path / "out" / "broken_denoised.png")
    assert failed.data is None and "broken.png" in failed.message
    assert not list(Path(tempfile.gettempdir()).glob(f"denoiser-ray-{os.getpid()}-*"))  # no scratch left

    other = FileDenoiser(str(tiny_model_file), info.name, "sha256:another", worker_settings, threads=1)
    assert "this is not the model the batch runs with" in other.info().problem


def test_workers_are_one_per_gpu_or_per_few_cpu_cores_and_must_fit() -> None:
    assert plan_workers({"CPU": 16.0}, RayCluster(), "auto").describe() == "4 worker(s) of 4 CPU core(s) each"
    assert plan_workers({"CPU": 2.0}, RayCluster(), "auto").describe() == "1 worker(s) of 2 CPU core(s) each"
    assert plan_workers({"CPU": 32.0, "GPU": 8.0}, RayCluster(), "auto").describe() == \
        "8 worker(s) of 1 GPU and 1 CPU core(s) each"
    assert plan_workers({"CPU": 32.0, "GPU": 8.0}, RayCluster(), "cpu").count == 8
    assert plan_workers({"CPU": 8.0}, RayCluster(workers=2, cpus_per_worker=1), "auto").count == 2
    with pytest.raises(DenoiserError, match="need 12 CPU cores; the Ray cluster has 8"):
        plan_workers({"CPU": 8.0}, RayCluster(workers=3), "cpu")
    with pytest.raises(DenoiserError, match="has none"):
        plan_workers({"CPU": 8.0}, RayCluster(), "cuda")


def test_the_batch_dialog_offers_the_cluster_only_where_ray_is_installed(
        qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.batch_dialog as batch_dialog

    torch.manual_seed(0)
    from denoiser.modelstore import save_to_library

    save_to_library(create_model("unet", {"widths": [4, 8], "blocks": 1}), "tiny")
    bridge = WorkerBridge()
    try:
        monkeypatch.setattr(batch_dialog, "ray_available", lambda: False)
        assert batch_dialog.BatchDialog(bridge, ["tiny"], "tiny", devices=["cpu"]).ray_box is None

        monkeypatch.setattr(batch_dialog, "ray_available", lambda: True)
        calls: list[dict[str, Any]] = []

        def on_cluster(settings: BatchSettings, model: Any, name: str, path: Path | None, **kwargs: Any) -> Any:
            calls.append({"name": name, "path": path})
            return run_batch(settings, model, name, **kwargs)  # the wiring is under test here, not Ray

        monkeypatch.setattr(batch_dialog, "run_ray_batch", on_cluster)
        dialog = batch_dialog.BatchDialog(bridge, ["tiny"], "tiny", devices=["cpu"])
        qtbot.addWidget(dialog)
        assert dialog.ray_box is not None and dialog.ray_box.text() == "Run on cluster (Ray)"
        photos(tmp_path / "in")
        dialog.input_edit.setText(str(tmp_path / "in"))
        dialog.output_edit.setText(str(tmp_path / "out"))
        dialog.ray_box.setChecked(True)
        assert dialog.start()
        qtbot.waitUntil(lambda: not dialog.is_running(), timeout=20_000)
        assert calls and calls[0]["name"] == "tiny" and Path(calls[0]["path"]).is_file()
        assert dialog.report is not None and dialog.report.done == 6
    finally:
        assert bridge.shutdown(10_000)
