"""The training request: nested sections with versions, a JSON round trip, validation, and the rules it decides once."""

from __future__ import annotations

import json

import pytest

from denoiser.config import ConfigError
from denoiser.errors import DenoiserError, UnknownNameError
from denoiser.train_request import (
    DEFAULT_STEPS,
    FINE_TUNE_LEARNING_RATE,
    FRESH_LEARNING_RATE,
    MINUTES_STEP_CAP,
    DataSpec,
    ModelSpec,
    NoiseSpec,
    OutputSpec,
    ScheduleSpec,
    TrainConfig,
    TrainRequest,
    default_learning_rate,
)


def request(**sections: object) -> TrainRequest:
    base: dict[str, object] = {"data": DataSpec(mode="clean", folders=("photos",))}
    base.update(sections)
    return TrainRequest(**base)  # type: ignore[arg-type]


def test_a_request_round_trips_through_json_with_a_version_per_section() -> None:
    original = request(
        model=ModelSpec(widths=(8, 16), options={"blocks": 1}, noise_channels=2),
        data=DataSpec(mode="clean", folders=("photos",), add_pairs="pairs", validation_fraction=0.2, seed=4),
        noise=NoiseSpec(synthesis={"weights": {"camera": 2.0, "gaussian_float": 1.0}}, pair_share=0.5),
        schedule=ScheduleSpec(minutes=30.0, learning_rate=5e-4, checkpoint="ckpt", session_minutes=9.0, threads=2),
        output=OutputSpec(name="mine", file="mine.safetensors"),
    )
    text = original.to_json()
    data = json.loads(text)
    assert data["version"] == TrainRequest.VERSION
    assert {name: data[name]["version"] for name in ("model", "data", "noise", "schedule", "output")} == dict.fromkeys(
        ("model", "data", "noise", "schedule", "output"), 1)
    back = TrainRequest.from_json(text)
    assert back == original and back.model.widths == (8, 16) and back.data.folders == ("photos",)
    assert TrainRequest.from_dict(original.to_dict()) == original


def test_sections_from_json_are_checked_like_the_whole() -> None:
    data = request().to_dict()
    data["schedule"]["warp"] = 9
    with pytest.raises(ConfigError, match="ScheduleSpec: unknown field"):
        TrainRequest.from_dict(data)
    data = request().to_dict()
    data["noise"]["version"] = 99
    with pytest.raises(ConfigError, match="NoiseSpec version 99 is newer"):
        TrainRequest.from_dict(data)
    data = request().to_dict()
    data["version"] = 99
    with pytest.raises(ConfigError, match="TrainRequest version 99 is newer"):
        TrainRequest.from_dict(data)
    with pytest.raises(ConfigError, match="model must be a ModelSpec"):
        TrainRequest(model="unet")  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "message"), [
    ({"data": DataSpec(mode="pairs", folders=("a", "b", "c"))}, "one folder .* or two"),
    ({"data": DataSpec(mode="noisy", folders=())}, "noisy photos come from one folder"),
    ({"data": DataSpec(mode="raw", folders=("a",))}, "data mode must be one of"),
    ({"data": DataSpec(mode="noisy", folders=("a",)), "noise": NoiseSpec(synthesis={})}, "for clean photos"),
    ({"data": DataSpec(mode="clean", folders=("a",), add_pairs="set")}, "add_pairs goes with"),
    ({"schedule": ScheduleSpec(session_minutes=5.0)}, "session_minutes needs schedule.checkpoint"),
    ({"schedule": ScheduleSpec(patch=40)}, "patch must be a multiple of 16"),
    ({"schedule": ScheduleSpec(steps=0)}, "steps must be >= 1"),
    ({"schedule": ScheduleSpec(learning_rate=-1.0)}, "learning_rate must be positive"),
    ({"data": DataSpec(mode="clean", folders=("a",), validation_fraction=1.0)}, "validation_fraction"),
    ({"model": ModelSpec(options={"widths": [8]})}, "fields of their own"),
    ({"model": ModelSpec(noise_channels=3)}, "noise_channels must be"),
])
def test_validation_names_what_is_wrong(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        request(**changes).validate()


def test_noise_and_names_are_checked_by_their_owners() -> None:
    with pytest.raises(UnknownNameError, match="fog"):
        request(noise=NoiseSpec(kinds=("fog",))).validate()
    with pytest.raises(UnknownNameError, match="fog"):
        request(noise=NoiseSpec(synthesis={"weights": {"fog": 1.0}})).validate()
    request(data=DataSpec(mode="noisy", folders=("a",)), noise=NoiseSpec(kinds=("fog",))).validate()  # not used
    with pytest.raises(DenoiserError, match="invalid model name"):
        request(output=OutputSpec(name="../x")).validate()


def test_the_learning_rate_rule_and_the_step_budget_are_decided_here() -> None:
    assert default_learning_rate(fine_tuning=False) == FRESH_LEARNING_RATE == 1e-3
    assert default_learning_rate(fine_tuning=True) == FINE_TUNE_LEARNING_RATE == 2e-4
    assert request().learning_rate() == FRESH_LEARNING_RATE
    assert request(model=ModelSpec(start_from="default")).learning_rate() == FINE_TUNE_LEARNING_RATE
    assert request(model=ModelSpec(start_from="default"),
                   schedule=ScheduleSpec(learning_rate=5e-4)).learning_rate() == 5e-4
    assert request().steps() == DEFAULT_STEPS == TrainConfig().steps
    assert request(schedule=ScheduleSpec(minutes=10.0)).steps() == MINUTES_STEP_CAP
    assert request(schedule=ScheduleSpec(steps=40, minutes=10.0)).steps() == 40


def test_a_request_resolves_into_the_loops_config() -> None:
    asked = request(model=ModelSpec(widths=(8, 16), options={"blocks": 1}, noise_channels=2),
                    data=DataSpec(mode="clean", folders=("a",), validation_fraction=0.2, seed=5),
                    schedule=ScheduleSpec(steps=30, batch_size=4, patch=32, validation_every=10, patience=2,
                                          checkpoint_every=5, workers=0))
    assert asked.model.fresh_config() == {"widths": [8, 16], "blocks": 1, "noise_channels": 2}
    config = asked.train_config(mode="synthetic", family="unet", model=asked.model.fresh_config(),
                                noise={"models": ["gaussian"]})
    expected = TrainConfig(mode="synthetic", family="unet", model={"widths": [8, 16], "blocks": 1, "noise_channels": 2},
                           steps=30, batch_size=4, patch=32, noise={"models": ["gaussian"]}, learning_rate=1e-3,
                           validation_fraction=0.2, validation_every=10, patience=2, checkpoint_every=5, workers=0,
                           seed=5)
    assert config == expected
    split = request(data=DataSpec(mode="clean", folders=("a",), seed=5, split_seed=0))
    assert split.train_config(mode="synthetic", family="unet", model={}).split_seed == 0
    assert TrainRequest.from_dict(json.loads(json.dumps(split.to_dict()))) == split
    # A request left at its defaults asks for the loop's defaults.
    defaults = request().train_config(mode="synthetic", family="unet", model={})
    assert defaults == TrainConfig()
    assert request().loop_mode() == "synthetic"
    assert request(noise=NoiseSpec(synthesis={})).loop_mode() == "device_mix"
