"""Batch denoising: output naming, collisions, per-file failures, cancel and resume, manifest, references."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image as PILImage

from denoiser.batch import (
    MANIFEST_NAME,
    BatchSettings,
    DenoiseSettings,
    Manifest,
    collect_inputs,
    find_reference,
    iter_batch,
    model_fingerprint,
    run_batch,
)
from denoiser.batch.manifest import LOCK_NAME
from denoiser.errors import Cancelled, DenoiserError, SettingsChanged, UnknownNameError
from denoiser.inference import TileSettings
from denoiser.io import read_image
from denoiser.models import create_model
from denoiser.progress import Progress


@pytest.fixture
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("unet", {"widths": [4, 8], "blocks": 1})


def write_photo(path: Path, seed: int, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels, mode).save(path)
    return path


TILES = TileSettings(tile=32, overlap=8)


def batch_settings(src: Path | list[Path], out: Path, **changes: object) -> BatchSettings:
    values: dict[str, object] = {"strength": 15.0, "tiles": TILES, "device": "cpu"}
    values.update(changes)
    return BatchSettings(inputs=src if isinstance(src, list) else [src], output=out, **values)  # type: ignore[arg-type]


def folder_with_a_bad_file(src: Path, count: int = 2, size: tuple[int, int] = (40, 30)) -> list[Path]:
    good = [write_photo(src / f"p{i}.png", i, size=size) for i in range(count)]
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return good


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` (hidden ones too) with its bytes and mtime."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file()}


def read_manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))


def test_batch_reports_a_bad_file_goes_on_and_records_everything(tmp_path: Path,
                                                                 tiny_model: torch.nn.Module) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    folder_with_a_bad_file(src)
    report = run_batch(batch_settings(src, out), tiny_model, "tiny")
    status = {r.source.name: r for r in report.results}
    assert [r.source.name for r in report.results] == ["broken.png", "p0.png", "p1.png"]
    assert status["broken.png"].status == "failed" and "broken.png" in status["broken.png"].message
    assert status["p0.png"].status == status["p1.png"].status == "done"
    assert (report.done, report.failed, report.skipped) == (2, 1, 0)
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, MANIFEST_NAME, "p0_denoised.png", "p1_denoised.png"]
    assert report.manifest == out / MANIFEST_NAME

    files = read_manifest(out)["files"]
    assert set(files) == {str((src / n).resolve()) for n in ("broken.png", "p0.png", "p1.png")}
    good, bad = files[str((src / "p0.png").resolve())], files[str((src / "broken.png").resolve())]
    assert good["input_sha256"] == hashlib.sha256((src / "p0.png").read_bytes()).hexdigest()
    assert good["model"] == "tiny" and good["model_fingerprint"] == model_fingerprint(tiny_model)
    assert good["settings"]["strength"] == 15.0 and good["settings"]["format"] == "same"
    assert good["status"] == "done" and good["sigma"] == 15.0 and good["seconds"] >= 0
    assert good["output"] == str((out / "p0_denoised.png").resolve())
    assert bad["status"] == "failed" and "broken.png" in bad["message"] and bad["output"] is None


def test_second_run_skips_what_is_done_and_rewrites_nothing(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    folder_with_a_bad_file(src)
    settings = batch_settings(src, out, strength=None)
    run_batch(settings, tiny_model, "tiny")
    outputs_before = {k: v for k, v in snapshot(out).items() if k != MANIFEST_NAME}
    again = run_batch(batch_settings(src, out, strength=None), tiny_model, "tiny")
    assert [(r.source.name, r.status, r.resumed) for r in again.results] == [
        ("broken.png", "failed", False), ("p0.png", "skipped", True), ("p1.png", "skipped", True)]
    assert all(r.sigma is not None for r in again.results if r.resumed)  # the auto sigma comes from the manifest
    assert {k: v for k, v in snapshot(out).items() if k != MANIFEST_NAME} == outputs_before  # not rewritten


def test_changed_settings_or_model_stop_before_any_work_and_redo_is_asked_for(tmp_path: Path,
                                                                              tiny_model: torch.nn.Module) -> None:
    """Issue 13, finding 2: a run with other settings silently redid (and took over) every file done before."""
    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 1)
    run_batch(batch_settings(src, out), tiny_model, "tiny")
    with pytest.raises(SettingsChanged, match=r"strength 15.0 \(now 30.0\)") as changed:
        run_batch(batch_settings(src, out, strength=30.0), tiny_model, "tiny")
    assert changed.value.files == [src / "a.png"]
    assert sorted(p.name for p in out.glob("*.png")) == ["a_denoised.png"]  # nothing was done
    stronger = run_batch(batch_settings(src, out, strength=30.0, redo=True), tiny_model, "tiny")
    assert stronger.results[0].status == "done"
    assert stronger.results[0].output == out / "a_denoised-2.png"  # the first result is kept (policy unique)
    torch.manual_seed(1)
    other = create_model("unet", {"widths": [4, 8], "blocks": 1})
    assert model_fingerprint(other) != model_fingerprint(tiny_model)
    with pytest.raises(SettingsChanged, match="another version of model tiny"):
        run_batch(batch_settings(src, out, strength=30.0), other, "tiny")
    assert run_batch(batch_settings(src, out, strength=30.0, redo=True), other, "tiny").results[0].status == "done"
    (out / "a_denoised-3.png").unlink()  # the output the manifest points to is gone: do it again, no question
    redone = run_batch(batch_settings(src, out, strength=30.0), other, "tiny").results[0]
    assert redone.status == "done" and redone.output == out / "a_denoised-3.png"


def test_a_rerun_with_more_passes_is_not_skipped_as_done(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """The self-ensemble's passes change the pixels: a rerun with 8 passes once skipped the 1-pass results as
    "already done" and left them as they were."""
    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 1)
    run_batch(batch_settings(src, out), tiny_model, "tiny")
    eight = batch_settings(src, out, tiles=TileSettings(tile=32, overlap=8, passes=8))
    with pytest.raises(SettingsChanged, match=r"passes 1 \(now 8\)"):
        run_batch(eight, tiny_model, "tiny")
    eight.redo = True
    assert run_batch(eight, tiny_model, "tiny").results[0].status == "done"
    again = batch_settings(src, out, tiles=TileSettings(tile=32, overlap=8, passes=8))
    assert run_batch(again, tiny_model, "tiny").results[0].status == "skipped"  # done with these settings now


def test_ctrl_c_midway_leaves_no_claim_running_in_the_manifest(tmp_path: Path, tiny_model: torch.nn.Module,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl+C in the command line (a KeyboardInterrupt, not a cancel) left the photo in progress marked
    "running" in the manifest, with no process behind it, until a rerun settled it."""
    import denoiser.batch.single as batch_single

    src, out = tmp_path / "in", tmp_path / "out"
    for i in range(3):
        write_photo(src / f"{i}.png", i)
    real, calls = batch_single.denoise_array, {"n": 0}

    def interrupted_on_the_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(batch_single, "denoise_array", interrupted_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        run_batch(batch_settings(src, out), tiny_model, "tiny")
    files = read_manifest(out)["files"]
    assert [entry["status"] for entry in files.values()] == ["done"]
    assert sorted(p.name for p in out.glob("*.png")) == ["0_denoised.png"]


def test_cancel_halfway_then_resume_equals_an_uninterrupted_run(tmp_path: Path,
                                                                tiny_model: torch.nn.Module) -> None:
    src = tmp_path / "in"
    for i in range(3):
        write_photo(src / f"{i}.png", i, size=(64, 64))
    write_photo(src / "sub" / "3.png", 3, size=(64, 64))
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    run_batch(batch_settings(src, whole), tiny_model, "tiny")

    polls = {"n": 0, "first_done_at": 0}

    def stop_half_way_through_the_second_file() -> bool:
        # Counted from the first result's appearance: how often a run asks (between files, tile batches and, on
        # torch, layers) is not this test's business.
        polls["n"] += 1
        if not polls["first_done_at"] and any(not p.name.startswith(".") for p in resumed.rglob("*_denoised.png")):
            polls["first_done_at"] = polls["n"]
        return bool(polls["first_done_at"]) and polls["n"] > polls["first_done_at"] + 8

    with pytest.raises(Cancelled):
        run_batch(batch_settings(src, resumed), tiny_model, "tiny", should_stop=stop_half_way_through_the_second_file)
    manifest = read_manifest(resumed)  # valid JSON
    done_first = [e for e in manifest["files"].values() if e["status"] == "done"]
    assert len(done_first) == 1
    assert [p.name for p in resumed.rglob(".*")] == [LOCK_NAME]  # no temporary files left behind
    finish = run_batch(batch_settings(src, resumed), tiny_model, "tiny")
    assert finish.skipped == len(done_first) and finish.done == 4 - len(done_first) and finish.failed == 0
    strip = {MANIFEST_NAME}
    assert {k: v[0] for k, v in snapshot(resumed).items() if k not in strip} == {
        k: v[0] for k, v in snapshot(whole).items() if k not in strip}
    assert {e["status"] for e in read_manifest(resumed)["files"].values()} == {"done"}


def test_cancel_before_the_first_file_still_leaves_a_manifest(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    write_photo(tmp_path / "in" / "a.png", 1)
    with pytest.raises(Cancelled):
        run_batch(batch_settings(tmp_path / "in", tmp_path / "out"), tiny_model, "tiny", should_stop=lambda: True)
    assert read_manifest(tmp_path / "out")["files"] == {}
    assert not (tmp_path / "out" / "a_denoised.png").exists()


@pytest.mark.parametrize("policy", ["unique", "skip", "overwrite"])
def test_collision_policies(tmp_path: Path, tiny_model: torch.nn.Module, policy: str) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 1)
    existing = write_photo(out / "a_denoised.png", 9)
    before = existing.read_bytes()
    (result,) = run_batch(batch_settings(src, out, collision=policy), tiny_model, "tiny").results
    if policy == "unique":
        assert result.status == "done" and result.output == out / "a_denoised-2.png"
        assert existing.read_bytes() == before
    elif policy == "skip":
        assert result.status == "skipped" and not result.resumed and "exists" in result.message
        assert existing.read_bytes() == before and not (out / "a_denoised-2.png").exists()
        assert read_manifest(out)["files"][str((src / "a.png").resolve())]["status"] == "skipped"
    else:
        assert result.status == "done" and result.output == existing
        assert existing.read_bytes() != before


def test_two_inputs_of_one_run_never_share_an_output(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    one, two = write_photo(tmp_path / "x" / "p.png", 1), write_photo(tmp_path / "y" / "p.png", 2)
    report = run_batch(batch_settings([one, two], tmp_path / "o", collision="overwrite"), tiny_model, "tiny")
    assert [r.output.name for r in report.results] == ["p_denoised.png", "p_denoised-2.png"]


@pytest.mark.parametrize("policy", ["unique", "skip", "overwrite"])
def test_an_input_is_never_written_over(tmp_path: Path, tiny_model: torch.nn.Module, policy: str) -> None:
    src = tmp_path / "in"
    write_photo(src / "a.png", 1)
    before = (src / "a.png").read_bytes()
    (result,) = run_batch(batch_settings(src, src, pattern="{stem}", collision=policy), tiny_model, "tiny").results
    assert (src / "a.png").read_bytes() == before
    if policy == "unique":
        assert result.status == "done" and result.output == src / "a-2.png"
    elif policy == "skip":
        assert result.status == "skipped"
    else:
        assert result.status == "failed" and "would overwrite the input" in result.message


def test_tiff16_output_is_16_bit_and_keeps_the_models_precision(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src = write_photo(tmp_path / "a.png", 1)
    (result,) = run_batch(batch_settings(src, tmp_path / "o", format="tiff16"), tiny_model, "tiny").results
    assert result.output == tmp_path / "o" / "a_denoised.tif"
    assert tifffile.imread(result.output).dtype == np.uint16
    pixels = read_image(result.output).pixels
    assert pixels.dtype == np.uint16 and np.any(pixels % 257 != 0)  # not just 8-bit values scaled up


def test_formats_and_aliases() -> None:
    assert BatchSettings(format="jpg").format == "jpeg" and BatchSettings(format="tif").format == "tiff"
    assert BatchSettings(format="jpeg").extension_for(Path("a.png")) == ".jpg"
    assert BatchSettings().extension_for(Path("a.webp")) == ".webp"
    with pytest.raises(UnknownNameError):
        BatchSettings(format="gif")
    with pytest.raises(UnknownNameError):
        BatchSettings(collision="replace")


def test_jpeg_output_with_quality(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src = write_photo(tmp_path / "a.png", 1)
    small = run_batch(batch_settings(src, tmp_path / "lo", format="jpeg", quality=20), tiny_model, "t").results[0]
    large = run_batch(batch_settings(src, tmp_path / "hi", format="jpeg", quality=95), tiny_model, "t").results[0]
    assert small.output.suffix == ".jpg" and PILImage.open(small.output).format == "JPEG"
    assert small.output.stat().st_size < large.output.stat().st_size


def test_find_reference(tmp_path: Path) -> None:
    noisy = write_photo(tmp_path / "X" / "noisy" / "a.png", 1)
    flat = write_photo(tmp_path / "X" / "b.png", 2)
    clean_a = write_photo(tmp_path / "X" / "clean" / "a.jpg", 3)
    assert find_reference(noisy) == clean_a
    assert find_reference(flat) is None
    clean_b_png = write_photo(tmp_path / "X" / "clean" / "b.png", 4)
    write_photo(tmp_path / "X" / "clean" / "b.bmp", 4)
    assert find_reference(flat) == clean_b_png  # the photo's own extension wins
    assert find_reference(clean_a) is None  # a reference has no reference
    (tmp_path / "X" / "clean" / "a.txt").write_text("not an image")
    assert find_reference(tmp_path / "X" / "noisy" / "lonely.png") is None


def test_reference_psnr_and_ssim_are_recorded(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:32, 0:40]
    clean = np.stack([x * 5, y * 6, (x + y) * 3], axis=2).clip(20, 230).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    root = tmp_path / "X"
    for folder, pixels in (("clean", clean), ("noisy", noisy)):
        (root / folder).mkdir(parents=True)
        PILImage.fromarray(pixels).save(root / folder / "a.png")
    write_photo(root / "noisy" / "b.png", 5, size=(40, 30))
    write_photo(root / "clean" / "b.png", 6, size=(20, 20))  # wrong size: noted, not compared
    out = tmp_path / "out"
    report = run_batch(batch_settings(root / "noisy", out), tiny_model, "tiny")
    a, b = report.results
    assert a.reference == root / "clean" / "a.png"
    assert set(a.metrics) == {"psnr_noisy", "ssim_noisy", "psnr_denoised", "ssim_denoised"}
    assert 15 < a.metrics["psnr_noisy"] < 30 and 0 < a.metrics["ssim_noisy"] < 1
    assert b.status == "done" and b.metrics == {} and "20x20" in b.reference_note
    entries = read_manifest(out)["files"]
    entry_a, entry_b = entries[str(a.source.resolve())], entries[str(b.source.resolve())]
    assert entry_a["metrics"] == pytest.approx(a.metrics)
    assert entry_a["reference"] == str((root / "clean" / "a.png").resolve())
    assert "not compared" in entry_b["reference_note"]


def test_no_recursive_and_outputs_inside_the_input_folder(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src = tmp_path / "in"
    write_photo(src / "a.png", 1)
    write_photo(src / "sub" / "b.png", 2)
    flat = collect_inputs(batch_settings(src, tmp_path / "o", recursive=False))
    assert [f.name for f, _ in flat] == ["a.png"]
    nested_out = src / "denoised"
    first = run_batch(batch_settings(src, nested_out), tiny_model, "tiny")
    assert first.done == 2
    second = run_batch(batch_settings(src, nested_out), tiny_model, "tiny")
    assert [r.source.name for r in second.results] == ["a.png", "b.png"]  # its own outputs are not inputs
    assert second.skipped == 2
    # Output folder = input folder: the manifest's outputs are not taken as inputs either.
    same = tmp_path / "same"
    write_photo(same / "c.png", 3)
    run_batch(batch_settings(same, same), tiny_model, "tiny")
    again = run_batch(batch_settings(same, same), tiny_model, "tiny")
    assert [(r.source.name, r.status) for r in again.results] == [("c.png", "skipped")]


def test_progress_has_files_and_tiles_stages_with_eta_and_results(tmp_path: Path,
                                                                  tiny_model: torch.nn.Module) -> None:
    src = tmp_path / "in"
    folder_with_a_bad_file(src, size=(64, 64))
    events: list[Progress] = []
    results = list(iter_batch(batch_settings(src, tmp_path / "o"), tiny_model, "tiny", on_progress=events.append))
    files = [e for e in events if e.stage == "files"]
    tiles = [e for e in events if e.stage == "tiles"]
    assert [(e.done, e.total) for e in files] == [(0, 3), (1, 3), (1, 3), (2, 3), (2, 3), (3, 3)]
    assert [e.extra["result"] for e in files if "result" in e.extra] == results
    assert all("eta" in e.extra for e in files + tiles)
    assert files[-1].extra["eta"] == 0.0 and files[0].extra["eta"] is None
    assert tiles and tiles[-1].done == tiles[-1].total and {e.extra["file"] for e in tiles} == {1, 2}
    assert any(e.extra["eta"] is not None for e in tiles)


def test_a_foreign_or_corrupt_manifest_is_not_replaced(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST_NAME).write_text("{ half written")
    write_photo(tmp_path / "a.png", 1)
    with pytest.raises(DenoiserError, match=MANIFEST_NAME):
        run_batch(batch_settings(tmp_path / "a.png", out), tiny_model, "tiny")
    assert (out / MANIFEST_NAME).read_text() == "{ half written"
    assert Manifest.load(tmp_path / "nowhere").entries == {}


def test_a_file_gone_mid_batch_is_a_failed_file(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src = tmp_path / "in"
    write_photo(src / "a.png", 1)
    write_photo(src / "b.png", 2)
    settings = batch_settings(src, tmp_path / "o")
    files = collect_inputs(settings)
    (src / "a.png").unlink()  # deleted by the user after the batch was planned
    results = list(iter_batch(settings, tiny_model, "tiny", files=files))
    assert [r.status for r in results] == ["failed", "done"]
    assert "a.png" in results[0].message and results[0].input_sha256 is None


def test_an_input_reached_through_a_link_is_not_written_over(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    out = tmp_path / "out"
    real = write_photo(out / "r_denoised.png", 7)  # a file in the output folder that is also an input...
    src = tmp_path / "in"
    src.mkdir()
    (src / "q.png").symlink_to(real)  # ...through a link in the input folder
    write_photo(src / "r.png", 8)  # whose output name is that very file
    before = real.read_bytes()
    report = run_batch(batch_settings(src, out, collision="overwrite"), tiny_model, "tiny")
    by_name = {r.source.name: r for r in report.results}
    assert by_name["r.png"].status == "failed" and "would overwrite the input" in by_name["r.png"].message
    assert real.read_bytes() == before


def test_auto_strength_is_estimated_per_photo_and_recorded(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 4, size=(48, 48))
    (result,) = run_batch(batch_settings(src, out, strength=None), tiny_model, "tiny").results
    assert result.status == "done" and result.sigma is not None and 0 < result.sigma <= 75
    assert read_manifest(out)["files"][str((src / "a.png").resolve())]["sigma"] == pytest.approx(result.sigma, abs=1e-4)


def test_unforeseen_error_in_one_file_does_not_stop_the_batch(tmp_path: Path, tiny_model: torch.nn.Module,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import denoiser.batch.single as batch_single

    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 1, size=(40, 30))
    write_photo(src / "b.png", 2, size=(40, 32))
    real = batch_single.denoise_array

    def flaky(pixels: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        if pixels.shape[0] == 30:  # a.png only
            raise RuntimeError("simulated kernel failure")
        return real(pixels, *args, **kwargs)

    monkeypatch.setattr(batch_single, "denoise_array", flaky)
    results = run_batch(batch_settings(src, out), tiny_model, "tiny").results
    assert [r.status for r in results] == ["failed", "done"]
    assert "a.png" in results[0].message and "simulated kernel failure" in results[0].message


def test_alpha_passes_through_and_inputs_are_untouched(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "alpha.png", 2, mode="RGBA")
    before = snapshot(src)
    (result,) = run_batch(batch_settings(src, out), tiny_model, "tiny").results
    np.testing.assert_array_equal(read_image(src / "alpha.png").alpha(), read_image(result.output).alpha())
    assert snapshot(src) == before


def test_amounts_scale_the_noise_level_and_a_changed_amount_redoes_the_file(tmp_path: Path,
                                                                          tiny_model: torch.nn.Module) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 5, size=(48, 40))
    half = run_batch(batch_settings(src, out, strength=20.0, amount=0.5), tiny_model, "tiny").results[0]
    assert half.status == "done" and half.sigma == pytest.approx(10.0)
    first_bytes = half.output.read_bytes()
    again = run_batch(batch_settings(src, out, strength=20.0, amount=0.5), tiny_model, "tiny").results[0]
    assert again.status == "skipped"
    with pytest.raises(SettingsChanged, match=r"color 1.0 \(now 0.0\)"):
        run_batch(batch_settings(src, out, strength=20.0, color=0.0), tiny_model, "tiny")
    no_colour = run_batch(batch_settings(src, out, strength=20.0, color=0.0, collision="overwrite", redo=True),
                          tiny_model, "tiny").results[0]
    assert no_colour.status == "done"  # another setting: not taken for the file done before
    assert no_colour.sigma == pytest.approx(np.sqrt(20.0**2 / 3))  # luminance only: 1 of 3 axes
    assert no_colour.output.read_bytes() != first_bytes
    entry = read_manifest(out)["files"][str((src / "a.png").resolve())]
    assert entry["settings"]["color"] == 0.0 and entry["settings"]["luminance"] == 1.0


def test_findings_about_a_result_reach_the_manifest(tmp_path: Path, tiny_model: torch.nn.Module,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import denoiser.batch.single as batch_single
    from denoiser.findings import Finding

    src, out = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 6, size=(48, 40))
    seen = {}

    def fake_assess(original: np.ndarray, denoised: np.ndarray, estimate: object) -> list[Finding]:
        seen["shapes"] = (original.shape, denoised.shape)
        return [Finding("detail_removed", "Detail went too.", "Lower the strength.")]

    monkeypatch.setattr(batch_single, "assess", fake_assess)
    (result,) = run_batch(batch_settings(src, out), tiny_model, "tiny").results
    assert seen["shapes"] == ((40, 48, 3), (40, 48, 3))
    assert result.findings == [{"code": "detail_removed", "message": "Detail went too.",
                                "advice": "Lower the strength."}]
    entry = read_manifest(out)["files"][str((src / "a.png").resolve())]
    assert entry["findings"] == result.findings


def test_amounts_out_of_range_are_refused_before_any_file() -> None:
    with pytest.raises(DenoiserError, match="amount"):
        DenoiseSettings(amount=2.5)
    with pytest.raises(DenoiserError, match="color"):
        DenoiseSettings(color=-0.1)




def test_what_a_format_cannot_hold_is_said_per_file(tmp_path: Path, tiny_model: torch.nn.Module) -> None:
    """A float TIFF written as PNG had its values outside 0-1 clipped, an RGBA photo written as JPEG lost its
    alpha: both were written with exit 0 and not a word."""
    src = tmp_path / "in"
    write_photo(src / "alpha.png", 1, mode="RGBA")
    wide = np.random.default_rng(2).uniform(-0.2, 1.3, (30, 40, 3)).astype(np.float32)
    tifffile.imwrite(src / "wide.tif", wide, photometric="rgb")
    as_png = run_batch(batch_settings([src / "wide.tif"], tmp_path / "png", format="png"), tiny_model, "tiny")
    (finding,) = [f for f in as_png.results[0].findings if f["code"] == "lost_in_writing"]
    assert "wide_denoised.png" in finding["message"] and "outside 0-1 and were clipped" in finding["message"]
    as_jpeg = run_batch(batch_settings([src / "alpha.png"], tmp_path / "jpg", format="jpg"), tiny_model, "tiny")
    (finding,) = [f for f in as_jpeg.results[0].findings if f["code"] == "lost_in_writing"]
    assert "alpha channel) was dropped" in finding["message"]
    kept = run_batch(batch_settings([src / "wide.tif", src / "alpha.png"], tmp_path / "same"), tiny_model, "tiny")
    assert not [f for r in kept.results for f in r.findings if f["code"] == "lost_in_writing"]  # float TIFF, PNG


def test_results_saved_beside_their_photos_are_not_denoised_again(tmp_path: Path,
                                                                  tiny_model: torch.nn.Module) -> None:
    """The app's Save writes a_denoised.png beside a.png; a batch over that folder then denoised the result a
    second time (into a_denoised_denoised.png)."""
    src = tmp_path / "in"
    for name in ("a.png", "a_denoised.png", "a_denoised-2.png", "b.png", "b-2.png", "c_denoised.png"):
        write_photo(src / name, len(name))
    report = run_batch(batch_settings(src, tmp_path / "out"), tiny_model, "tiny")
    assert sorted(r.source.name for r in report.results) == ["a.png", "b-2.png", "b.png", "c_denoised.png"]
    named = run_batch(batch_settings([src / "a_denoised.png"], tmp_path / "named"), tiny_model, "tiny")
    assert [r.status for r in named.results] == ["done"]  # a file named on its own is what was asked for
    mine = run_batch(batch_settings(src, tmp_path / "clean", pattern="{stem}_clean"), tiny_model, "tiny")
    assert "a_denoised.png" not in {r.source.name for r in mine.results}  # the app's own name, whatever the pattern
