"""Training: every mode learns, validates, keeps the best, stops early or on time, and resumes exactly."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from denoiser.datasets import NoisyOnlySource, PairSource, SyntheticSource
from denoiser.errors import Cancelled, DenoiserError
from denoiser.metrics import psnr
from denoiser.modelfile import load_model_file, save_model
from denoiser.models import create_model
from denoiser.noise import NoiseMix
from denoiser.train_request import TrainConfig
from denoiser.training import train, training_info
from denoiser.validation import run_split, split_images


def photos(count: int = 6, height: int = 64, width: int = 80) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width]
    images = []
    for a, b, c in rng.uniform(0.05, 0.3, (count, 3)):
        base = np.stack([np.sin(x * a) * 80, np.cos(y * b) * 80, np.sin((x + y) * c) * 80], axis=2) + 128
        images.append(base.clip(0, 255).astype(np.uint8))
    return images


def noisy_copies(images: list[np.ndarray], sigma: float = 25.0) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [np.clip(i + rng.normal(0, sigma, i.shape), 0, 255).astype(np.uint8) for i in images]


def tiny_config(**changes: object) -> TrainConfig:
    base = dict(family="unet", model={"widths": [8, 16], "blocks": 1}, steps=8, batch_size=4, patch=32,
                validation_fraction=0.34, validation_every=4, checkpoint_every=2, seed=3, learning_rate=3e-3,
                workers=0)
    base.update(changes)
    return TrainConfig(**base)  # type: ignore[arg-type]


def run(source: object, config: TrainConfig, **kwargs: object):
    events = list(train(source, config, **kwargs))  # type: ignore[arg-type]
    assert events[-1].stage == "done"
    return events[-1].extra["result"], events


def test_split_is_seeded_and_disjoint() -> None:
    train_ids, held = split_images(20, 0.2, seed=1)
    assert (train_ids, held) == split_images(20, 0.2, seed=1)
    assert len(held) == 4 and not set(train_ids) & set(held)
    assert sorted(train_ids + held) == list(range(20))


def test_a_split_seed_keeps_the_held_out_photos_while_the_seed_changes_the_batches() -> None:
    """A chain of fine-tunes with new seeds used to move the held-out split too, training on what earlier runs
    held out."""
    first = run_split(TrainConfig(validation_fraction=0.03, seed=0), 432)
    assert run_split(TrainConfig(validation_fraction=0.03, seed=1, split_seed=0), 432) == first
    assert run_split(TrainConfig(validation_fraction=0.03, seed=1), 432) != first  # --seed alone moves it


def test_synthetic_training_learns_and_keeps_the_best() -> None:
    mix = NoiseMix(models=("gaussian", "poisson_gaussian", "correlated", "jpeg"))
    result, events = run(SyntheticSource(photos(), mix), tiny_config(steps=60, validation_every=20))
    losses = [h["loss"] for h in result.history]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    scores = [h["val_psnr"] for h in result.history if "val_psnr" in h]
    assert len(scores) == 3 and result.best == max(scores) and result.best > result.start
    sample = next(e.extra["sample"] for e in events if "sample" in e.extra)
    assert sample["before"].dtype == np.uint8 and sample["after"].shape == sample["before"].shape
    assert all("eta_s" in e.extra and "lr" in e.extra for e in events if e.stage == "train")


def held_out_psnr(model: torch.nn.Module, noisy: list[np.ndarray], clean: list[np.ndarray], held: list[int]) -> float:
    """Mean PSNR of ``model`` on the held-out pairs, computed here rather than by the engine's validator: each
    noisy photo at its own estimated noise level (as the pair source gives it), the result rounded to 8 bits."""
    from denoiser.inference import denoise_array
    from denoiser.noise import MAX_SIGMA
    from denoiser.noise_estimation import estimate_noise

    scores = []
    for index in held:
        out = denoise_array(noisy[index], model, min(MAX_SIGMA, estimate_noise(noisy[index])), device="cpu")
        scores.append(psnr(clean[index], np.clip(np.round(out * 255), 0, 255).astype(np.uint8)))
    return float(np.mean(scores))


def test_pairs_fine_tuning_reports_its_gain_over_the_start() -> None:
    clean = photos()
    noisy = noisy_copies(clean)
    torch.manual_seed(0)
    start = create_model("unet", {"widths": [8, 16], "blocks": 1})
    config = tiny_config(steps=40, validation_every=20)
    untouched = {key: value.clone() for key, value in start.state_dict().items()}
    result, _ = run(PairSource(noisy, clean), config, start_model=start)
    assert result.metric == "val_psnr" and result.model is not start
    assert all(torch.equal(value, start.state_dict()[key]) for key, value in untouched.items())  # start left as it was
    # Both figures measured again on the held-out photos: the start model's, and the kept (best) model's.
    _, held = split_images(len(clean), config.validation_fraction, config.seed)
    before, after = held_out_psnr(start, noisy, clean, held), held_out_psnr(result.model, noisy, clean, held)
    assert result.start == pytest.approx(before, abs=0.02) and result.best == pytest.approx(after, abs=0.02)
    assert result.gain == pytest.approx(after - before, abs=0.04)
    assert after > before + 1.0  # training really improved the held-out photos, by a margin
    assert not result.start_kept


def test_self_supervised_training_beats_the_noisy_input() -> None:
    clean = photos(count=8, height=96, width=96)
    noisy = noisy_copies(clean, 25)
    result, _ = run(NoisyOnlySource(noisy), tiny_config(steps=120, validation_every=60, learning_rate=5e-3,
                                                        batch_size=8))
    assert result.metric == "val_loss" and result.best < result.start
    from denoiser.inference import denoise_array

    out = denoise_array(noisy[0], result.model, 25, device="cpu")
    assert psnr(clean[0], np.clip(out * 255, 0, 255)) > psnr(clean[0], noisy[0]) + 1.0


def test_patience_stops_a_run_that_no_longer_improves() -> None:
    result, _ = run(SyntheticSource(photos(), NoiseMix()), tiny_config(steps=40, learning_rate=1e-9,
                                                                        validation_every=2, patience=2))
    assert result.stopped_early and result.steps < 40


def test_time_budget_ends_the_run() -> None:
    result, _ = run(SyntheticSource(photos(), NoiseMix()), tiny_config(steps=100_000, minutes=0.002))
    assert result.steps < 100_000


def slow_start_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training's clock with about 20 slow first steps (0.5 s each), then fast ones: a GPU's start."""
    import denoiser.training as training

    clock = {"now": 0.0, "calls": 0}

    def fake_monotonic() -> float:
        clock["calls"] += 1
        clock["now"] += 0.5 if clock["calls"] < 60 else 0.001
        return clock["now"]

    monkeypatch.setattr(training.time, "monotonic", fake_monotonic)


def test_a_slow_start_does_not_cut_a_timed_run_short(monkeypatch: pytest.MonkeyPatch) -> None:
    # A GPU's first steps (kernel selection, workers' first batches) are slow: the schedule fitted at step 20
    # ends early. A later fit that finds time left must move the end out instead of stopping there.
    slow_start_clock(monkeypatch)
    result, _ = run(SyntheticSource(photos(), NoiseMix()),
                    tiny_config(steps=400, minutes=0.5, validation_every=10, checkpoint_every=1000))
    fitted_at_20 = int(0.5 * 60 * 20 / result.history[19]["seconds"])
    assert fitted_at_20 < 60  # the early fit alone would have stopped the run there
    assert result.steps == 400  # the budget (30 s) covers all steps at the later pace


def interrupt(source: object, folder: Path, at: int = 4, **changes: object) -> None:
    """Drop a run once the checkpoint of step ``at`` is on disk (as a kill would)."""
    generator = train(source, tiny_config(**changes), checkpoint_dir=folder)  # type: ignore[arg-type]
    for event in generator:
        if event.stage == "train" and event.done == at:
            break
    generator.close()


def assert_same_weights(model: torch.nn.Module, reference: torch.nn.Module) -> None:
    """Bit for bit, not merely close."""
    expected = reference.state_dict()
    assert model.state_dict().keys() == expected.keys()
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def resume_source() -> SyntheticSource:
    return SyntheticSource(photos(), NoiseMix(models=("gaussian", "poisson_gaussian")))


@pytest.fixture(scope="module")
def straight() -> object:
    """The uninterrupted run every resumed one must match (on one thread, as the tests run: see conftest)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(resume_source(), tiny_config())[0]
    finally:
        torch.set_num_threads(threads)


def test_killed_run_resumes_with_the_same_results(tmp_path: Path, straight: object) -> None:
    source = resume_source()
    folder = tmp_path / "interrupted"
    interrupt(source, folder)
    from denoiser.checkpoints import read_checkpoint_state

    meta = read_checkpoint_state(folder)
    assert (folder / "checkpoint.json").is_file() and not (folder / "checkpoint.safetensors").exists()
    assert sorted(p.name for p in folder.glob("checkpoint-*.safetensors")) == [e["file"] for e in meta["parts"]]
    assert meta["state"]["step"] == 4 and len(meta["state"]["history"]) == 4
    assert meta["memory_format"] == "channels_last"  # as validation left the model
    resumed, events = run(source, tiny_config(), checkpoint_dir=folder)
    assert events[0].message == "resumed at step 4"
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    assert_same_weights(resumed.model, straight.model)
    # Two sessions did the run: each is on record, with its device, steps and time.
    assert [r["steps"] for r in resumed.runs] == [4, 4] and len(straight.runs) == 1
    for record in resumed.runs:
        assert record["device"] == "cpu" and record["device_name"] and record["seconds"] > 0
        assert datetime.fromisoformat(record["started"]).tzinfo is not None
    saved = read_checkpoint_state(folder)["state"]["runs"]  # as of the last checkpoint, a moment before the end
    assert [{**r, "seconds": 0} for r in saved] == [{**r, "seconds": 0} for r in resumed.runs]
    assert saved[-1]["seconds"] <= resumed.runs[-1]["seconds"]


def test_a_run_without_validation_resumes_exactly(tmp_path: Path) -> None:
    # No validation: the model keeps the layout it was made in (validation's inference leaves channels_last).
    source = resume_source()
    straight_run, _ = run(source, tiny_config(validation_fraction=0.0))
    interrupt(source, tmp_path, validation_fraction=0.0)
    assert json.loads((tmp_path / "checkpoint.json").read_text())["memory_format"] == "contiguous"
    resumed, _ = run(source, tiny_config(validation_fraction=0.0), checkpoint_dir=tmp_path)
    assert_same_weights(resumed.model, straight_run.model)


def test_a_model_drawing_random_numbers_resumes_exactly_with_a_background_worker(tmp_path: Path) -> None:
    """Issue 13, finding 6: with ``--workers`` (the command's default) a variational model's resumed run drifted
    (2e-3 after 30 of 60 steps): starting the batch worker drew from torch's random state, which the model's
    sampling shares and the checkpoint restores, so every later draw was shifted by one."""
    changes = {"family": "variational", "workers": 1}
    straight_run, _ = run(resume_source(), tiny_config(**changes))
    interrupt(resume_source(), tmp_path, **changes)
    resumed, events = run(resume_source(), tiny_config(**changes), checkpoint_dir=tmp_path)
    assert events[0].message == "resumed at step 4"
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight_run.history]
    assert_same_weights(resumed.model, straight_run.model)


def test_a_split_checkpoint_travels_to_another_folder_and_resumes_exactly(
        tmp_path: Path, straight: object, monkeypatch: pytest.MonkeyPatch) -> None:
    import denoiser.checkpoints as checkpoints

    limit = 4096  # the tiny model's larger convolutions (9216 bytes) are cut into pieces
    monkeypatch.setattr(checkpoints, "PART_LIMIT", limit)
    source = resume_source()
    interrupt(source, tmp_path / "gpu-machine")
    parts = sorted((tmp_path / "gpu-machine").glob("checkpoint-*.safetensors"))
    assert len(parts) > 10 and all(p.stat().st_size <= limit for p in parts)
    meta = json.loads((tmp_path / "gpu-machine" / "checkpoint.json").read_text())
    assert any(name.startswith("model.") and split["pieces"] >= 2 for name, split in meta["split"].items())
    assert meta["history_in_parts"] and "history" not in meta["state"]  # too long for a 4 KiB JSON
    # Only the files travel (through an output folder): the run goes on elsewhere, with the usual limit.
    here = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "gpu-machine", here)
    shutil.rmtree(tmp_path / "gpu-machine")
    assert [h["step"] for h in checkpoints.read_checkpoint_state(here)["state"]["history"]] == [1, 2, 3, 4]
    monkeypatch.setattr(checkpoints, "PART_LIMIT", 15 * 2**20)
    resumed, events = run(source, tiny_config(), checkpoint_dir=here)
    assert events[0].message == "resumed at step 4"
    assert_same_weights(resumed.model, straight.model)
    assert len(list(here.glob("checkpoint-*.safetensors"))) == 1  # the small parts of before are gone


def test_pieces_are_packed_in_name_order_and_join_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import denoiser.checkpoints as checkpoints

    monkeypatch.setattr(checkpoints, "PART_LIMIT", 2048)
    tensors = {"b.wide": torch.randn(12, 40), "a.small": torch.arange(5), "c.one_long_row": torch.randn(1, 900),
               "d.scalar": torch.tensor(2.5, dtype=torch.float64), "e.empty": torch.zeros(0, 3)}
    meta = {"config": {}, "state": {"history": []}, "optimizer": {}}
    checkpoints._write_checkpoint(tmp_path, tensors, meta)
    stored = checkpoints._read_meta(tmp_path)
    assert stored["split"] == {"b.wide": {"shape": [12, 40], "pieces": 2},
                               "c.one_long_row": {"shape": [1, 900], "pieces": 2}}
    from safetensors import safe_open

    names = []
    for entry in stored["parts"]:
        assert (tmp_path / entry["file"]).stat().st_size == entry["size"] <= 2048
        with safe_open(str(tmp_path / entry["file"]), framework="pt") as handle:
            names.append(sorted(handle.keys()))
    assert [n for part in names for n in part] == ["a.small", "b.wide@0", "b.wide@1", "c.one_long_row@0",
                                                   "c.one_long_row@1", "d.scalar", "e.empty"]
    back = checkpoints._read_tensors(tmp_path, stored)
    assert back.keys() == tensors.keys()
    for name, value in tensors.items():
        assert back[name].dtype == value.dtype and torch.equal(back[name], value), name


def test_a_kill_in_the_middle_of_a_save_leaves_the_previous_checkpoint(
        tmp_path: Path, straight: object, monkeypatch: pytest.MonkeyPatch) -> None:
    import denoiser.checkpoints as checkpoints

    source = resume_source()
    interrupt(source, tmp_path)
    before = (tmp_path / "checkpoint.json").read_bytes()

    def killed(*args: object) -> None:
        raise KeyboardInterrupt  # the new parts are on disk, the JSON naming them is not yet in place

    monkeypatch.setattr(checkpoints.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        run(source, tiny_config(), checkpoint_dir=tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "checkpoint.json").read_bytes() == before
    named = {e["file"] for e in json.loads(before)["parts"]}
    assert {p.name for p in tmp_path.glob("checkpoint-*.safetensors")} > named  # the dead save's parts linger
    resumed, events = run(source, tiny_config(), checkpoint_dir=tmp_path)
    assert events[0].message == "resumed at step 4"
    assert_same_weights(resumed.model, straight.model)
    named = {e["file"] for e in json.loads((tmp_path / "checkpoint.json").read_text())["parts"]}
    assert {p.name for p in tmp_path.glob("checkpoint-*.safetensors")} == named  # and are cleared by the next


def test_a_missing_or_corrupt_part_is_named(tmp_path: Path) -> None:
    from denoiser.checkpoints import model_from_checkpoint

    source = SyntheticSource(photos(), NoiseMix())
    run(source, tiny_config(steps=2), checkpoint_dir=tmp_path)
    part = next(tmp_path.glob("checkpoint-*.safetensors"))
    data = bytearray(part.read_bytes())
    data[-1] ^= 1
    part.write_bytes(bytes(data))
    with pytest.raises(DenoiserError, match=rf"{part.name}: checkpoint part corrupt"):
        model_from_checkpoint(tmp_path)
    with pytest.raises(DenoiserError, match=rf"{part.name}: checkpoint part corrupt"):
        run(source, tiny_config(steps=2), checkpoint_dir=tmp_path)
    part.unlink()
    with pytest.raises(DenoiserError, match=rf"{part.name}: checkpoint part missing"):
        model_from_checkpoint(tmp_path)


def test_a_checkpoint_of_the_old_single_file_layout_resumes(tmp_path: Path, straight: object) -> None:
    from safetensors.torch import save_file

    import denoiser.checkpoints as checkpoints

    source = resume_source()
    interrupt(source, tmp_path)
    # Rewrite it as earlier versions saved it: one file, the JSON in its header, no session records.
    meta = checkpoints.read_checkpoint_state(tmp_path)
    tensors = checkpoints._read_tensors(tmp_path, checkpoints._read_meta(tmp_path))
    tensors.pop("state.history", None)
    old = {"config": meta["config"], "state": {k: v for k, v in meta["state"].items() if k != "runs"},
           "optimizer": meta["optimizer"]}
    for path in tmp_path.iterdir():
        path.unlink()
    save_file(tensors, str(tmp_path / "checkpoint.safetensors"), metadata={"denoiser_checkpoint": json.dumps(old)})
    assert checkpoints.read_checkpoint_state(tmp_path)["state"]["step"] == 4
    assert checkpoints.model_from_checkpoint(tmp_path, "model")[1]["state"]["step"] == 4
    resumed, events = run(source, tiny_config(), checkpoint_dir=tmp_path)
    assert events[0].message == "resumed at step 4"
    assert_same_weights(resumed.model, straight.model)
    assert [r["steps"] for r in resumed.runs] == [4]  # the old checkpoint had no records: this session's only
    assert (tmp_path / "checkpoint.json").is_file() and not (tmp_path / "checkpoint.safetensors").exists()


def test_device_minutes_add_up_the_sessions_per_device_kind() -> None:
    from denoiser.checkpoints import device_minutes

    runs = [{"device": "cuda", "seconds": 600.0}, {"device": "cpu", "seconds": 240.0},
            {"device": "cuda", "seconds": 678.0}]
    assert device_minutes(runs) == {"cuda": 21.3, "cpu": 4.0}
    assert device_minutes([]) == {}


def test_background_workers_give_the_same_batches() -> None:
    source = SyntheticSource(photos(), NoiseMix())
    inline, _ = run(source, tiny_config(steps=4, validation_every=4, workers=0))
    background, _ = run(source, tiny_config(steps=4, validation_every=4, workers=1))
    assert [h["loss"] for h in inline.history] == pytest.approx([h["loss"] for h in background.history])


def test_stop_request_saves_a_checkpoint_and_raises(tmp_path: Path) -> None:
    calls = {"n": 0}

    def stop_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    source = SyntheticSource(photos(), NoiseMix())
    with pytest.raises(Cancelled):
        list(train(source, tiny_config(), checkpoint_dir=tmp_path, should_stop=stop_after_three))
    _, events = run(source, tiny_config(), checkpoint_dir=tmp_path)
    assert events[0].message == "resumed at step 3"


def test_checkpoint_of_other_settings_is_refused(tmp_path: Path) -> None:
    source = SyntheticSource(photos(), NoiseMix())
    run(source, tiny_config(steps=2), checkpoint_dir=tmp_path)
    with pytest.raises(DenoiserError, match="other settings"):
        run(source, tiny_config(steps=2, learning_rate=1e-4), checkpoint_dir=tmp_path)


@pytest.mark.parametrize(("family", "config"), [
    ("undercomplete", {"widths": [8, 16], "blocks": 0, "latent_channels": 6}),
    ("sparse", {"widths": [8, 16], "blocks": 0, "latent_channels": 32}),
    ("variational", {"widths": [8, 16], "blocks": 0, "latent_channels": 6}),
])
def test_every_family_trains_and_saves(family: str, config: dict, tmp_path: Path) -> None:
    settings = tiny_config(family=family, model=config, steps=4)
    result, _ = run(SyntheticSource(photos(), NoiseMix()), settings)
    path = save_model(result.model, tmp_path / f"{family}.safetensors", training_info(result, settings, "synthetic"))
    model, info = load_model_file(path)
    assert info.family == family and info.training["steps_done"] == 4 and info.trained_on == "synthetic"
    assert info.training["runs"] == result.runs and [r["steps"] for r in result.runs] == [4]
    assert set(info.training["device_minutes"]) == {"cpu"}
    assert info.validation["metric"] == "val_psnr" and "start" in info.validation


def test_a_non_finite_loss_is_skipped_and_the_weights_stay_sound(monkeypatch: pytest.MonkeyPatch) -> None:
    import denoiser.training as training

    real, calls = training._loss, {"n": 0}

    def sometimes_nan(*args: object, **kwargs: object) -> torch.Tensor:
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 2 else loss

    monkeypatch.setattr(training, "_loss", sometimes_nan)
    result, _ = run(SyntheticSource(photos(), NoiseMix()), tiny_config(steps=4, validation_every=4))
    assert result.steps == 4
    assert all(torch.isfinite(v).all() for v in result.model.state_dict().values())


def test_gradients_are_clipped_to_the_configured_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        total = real(parameters, max_norm, *args, **kwargs)
        seen.append(float(torch.norm(torch.stack([p.grad.norm() for p in parameters if p.grad is not None]))))
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    run(SyntheticSource(photos(), NoiseMix()), tiny_config(steps=3, validation_every=3, grad_clip=1e-3))
    assert len(seen) == 3 and max(seen) <= 1e-3 * 1.01


def test_a_checkpoint_exports_its_best_and_current_weights(tmp_path: Path) -> None:
    from denoiser.checkpoints import model_from_checkpoint

    source = SyntheticSource(photos(), NoiseMix())
    result, _ = run(source, tiny_config(), checkpoint_dir=tmp_path)
    best, meta = model_from_checkpoint(tmp_path)
    current, _ = model_from_checkpoint(tmp_path, "model")
    assert meta["state"]["step"] == 8 and not best.training
    for key, value in result.model.state_dict().items():  # the run ends holding its best weights
        torch.testing.assert_close(best.state_dict()[key], value)
    assert current.state_dict().keys() == best.state_dict().keys() and not current.training
    with pytest.raises(DenoiserError, match="no training checkpoint"):
        model_from_checkpoint(tmp_path / "empty")
    with pytest.raises(DenoiserError, match="'best' or 'model'"):
        model_from_checkpoint(tmp_path, "latest")


def device_mix_source() -> object:
    from denoiser.datasets import DeviceMixSource
    from denoiser.synthesis import SynthesisMix

    pairs = photos(3)
    return DeviceMixSource(photos(), SynthesisMix(), noisy_copies(pairs), pairs, pair_share=0.25)


def test_device_mix_training_learns_and_resumes_exactly(tmp_path: Path) -> None:
    changes = {"mode": "device_mix", "model": {"widths": [8, 16], "blocks": 1, "noise_channels": 2},
               "pair_share": 0.25, "synthesis": {"weights": {"camera": 1.0, "gaussian_float": 1.0}}}
    straight_run, events = run(device_mix_source(), tiny_config(**changes))
    assert straight_run.best is not None and straight_run.best > straight_run.start  # learns on camera + Gaussian
    interrupt(device_mix_source(), tmp_path, **changes)
    resumed, resumed_events = run(device_mix_source(), tiny_config(**changes), checkpoint_dir=tmp_path)
    assert resumed_events[0].message == "resumed at step 4"
    assert_same_weights(resumed.model, straight_run.model)


def test_a_checkpoint_from_before_new_settings_existed_still_resumes(tmp_path: Path, straight: object) -> None:
    interrupt(resume_source(), tmp_path)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    for added in ("synthesis", "pair_share"):  # as a checkpoint written by the previous release
        del meta["config"][added]
    (tmp_path / "checkpoint.json").write_text(json.dumps(meta))
    resumed, events = run(resume_source(), tiny_config(), checkpoint_dir=tmp_path)
    assert events[0].message == "resumed at step 4"
    assert TrainConfig.from_dict(meta["config"]).synthesis == {}
    assert_same_weights(resumed.model, straight.model)


def test_validation_scores_float_noise_too_when_training_makes_it() -> None:
    from denoiser.validation import Validator, validation_protocols

    clipped_only = tiny_config(noise={"models": ["gaussian"], "quantize": True})
    half = tiny_config(noise={"models": ["gaussian"], "quantize": True, "quantize_probability": 0.5})
    assert validation_protocols(clipped_only) == ("clipped",)
    assert validation_protocols(half) == ("clipped", "float")
    no_float = tiny_config(mode="device_mix", synthesis={"weights": {"camera": 1.0, "gaussian_clipped": 1.0}})
    assert validation_protocols(no_float) == ("clipped",)
    assert validation_protocols(tiny_config(mode="device_mix")) == ("clipped", "float")  # the default mix
    validator = Validator(resume_source(), [0, 1], half)
    assert len(validator.items) == 4
    clipped, floated = validator.items[0][0], validator.items[1][0]
    assert clipped.dtype == np.uint8 and floated.dtype == np.float32
    assert floated.min() < 0 or floated.max() > 1  # unclipped
    np.testing.assert_array_equal(np.clip(np.round(floated.astype(np.float64) * 255), 0, 255).astype(np.uint8)[:4],
                                  clipped[:4])


def test_a_checkpoint_keeps_the_mixed_precision_loss_scale(tmp_path: Path) -> None:
    """On a GPU a resumed run started its loss scaler afresh at 65536, unlike the run it continued: the first
    steps after each resume could be skipped while the scale backed off again. The scaler's state travels now
    (a CPU scaler stands in for CUDA's here: the same class and state)."""
    from denoiser.checkpoints import load_checkpoint, save_checkpoint

    model = create_model("unet", {"widths": [4, 8]})
    optimizer = torch.optim.Adam(model.parameters())
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1)
    for _ in range(3):
        optimizer.zero_grad()
        scaler.scale(model(torch.rand(1, 3, 8, 8), 0.1).sum()).backward()
        scaler.step(optimizer)
        scaler.update()
    assert scaler.get_scale() == 8192.0
    config = tiny_config()
    save_checkpoint(tmp_path, model, {}, optimizer, {"step": 3}, config, scaler)
    fresh = torch.amp.GradScaler("cpu", growth_interval=1)
    assert fresh.get_scale() == 65536.0
    state = load_checkpoint(tmp_path, create_model("unet", {"widths": [4, 8]}), {},
                            torch.optim.Adam(create_model("unet", {"widths": [4, 8]}).parameters()), config, fresh)
    assert state == {"step": 3}
    assert fresh.get_scale() == 8192.0


def test_a_fine_tune_that_no_step_beats_keeps_the_start_and_says_so() -> None:
    """Walk 2, item 1: the best kept was the starting model itself, and the saved model's record said nothing."""
    clean = photos()
    torch.manual_seed(0)
    start = create_model("unet", {"widths": [8, 16], "blocks": 1})
    config = tiny_config(steps=4, validation_every=2, learning_rate=1.0, start_from="mine")  # every step a wreck
    result, _ = run(PairSource(noisy_copies(clean), clean), config, start_model=start)
    assert result.best == result.start and result.start_kept
    assert_same_weights(result.model, start)
    info = training_info(result, config, "4 pairs", name="copy")
    assert info.training["start_kept"] is True
    assert "starting model (mine), unchanged" in info.description


def test_a_time_budget_counts_the_time_left_from_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Walk 2, item 5: the time left came from the schedule fitted to the slow first steps (too short)."""
    slow_start_clock(monkeypatch)
    config = tiny_config(steps=100_000, minutes=0.5, validation_every=10_000, checkpoint_every=100_000)
    events = train(SyntheticSource(photos(), NoiseMix()), config)
    seen = []
    for event in events:
        if event.stage == "train":
            seen.append(event)
            if event.done == 30:
                break
    events.close()
    assert seen[-1].total < 60  # the fit at step 20 would end the run early (a later fit moves it out)
    for event in seen:  # the budget's rest, to the clock's next ticks (the validation's, the ETA's own)
        assert event.extra["eta_s"] == pytest.approx(30 - event.extra["seconds"], abs=1.01)


def test_a_step_limit_before_the_budget_gives_the_time_left() -> None:
    result, events = run(SyntheticSource(photos(), NoiseMix()), tiny_config(steps=6, minutes=60.0))
    last = [e for e in events if e.stage == "train"]
    assert last[-1].extra["eta_s"] == 0.0 and last[0].extra["eta_s"] < 60 * 60 - 1  # the steps end it, not the hour
