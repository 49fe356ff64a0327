"""Tests of the autoencoder families: registry, configs, training step, latents and receptive fields."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from denoiser.config import ConfigError
from denoiser.errors import UnknownNameError
from denoiser.models import Autoencoder, config_class, create_model, families


def tiny_config(family: str, channels: int = 3, **overrides) -> dict:
    """A small config for any family: only the fields that family has are set."""
    names = {f.name for f in dataclasses.fields(config_class(family))}
    wanted = {"channels": channels, "widths": (4, 8, 16), "blocks": 1, "latent_channels": 8}
    wanted.update(overrides)
    return {key: value for key, value in wanted.items() if key in names}


def tiny_model(family: str, channels: int = 3, **overrides) -> Autoencoder:
    torch.manual_seed(0)
    return create_model(family, tiny_config(family, channels, **overrides))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflection padding on the bottom and right up to ``multiple``, as inference does."""
    pad_h, pad_w = -x.shape[2] % multiple, -x.shape[3] % multiple
    return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")


def latent_channels(model: Autoencoder) -> int:
    """The documented channel count of ``encode``: the bottleneck width for unet, else latent_channels."""
    return getattr(model.config, "latent_channels", model.config.widths[-1])


def test_every_expected_family_is_registered():
    assert {"unet", "nafnet", "undercomplete", "sparse", "variational"} <= set(families())


@pytest.mark.parametrize("size", [(16, 16), (17, 23)], ids=["16x16", "17x23"])
@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("family", families())
def test_forward_backward_gives_finite_gradients(family, channels, size):
    """One training step: output shaped like the (padded) input, and every parameter gets a finite gradient."""
    model = tiny_model(family, channels).train()
    torch.manual_seed(1)
    clean = torch.rand(2, channels, *size)
    noisy = clean + 0.1 * torch.randn_like(clean)
    padded = pad_to_multiple(noisy, model.size_multiple)
    assert padded.shape[2] % model.size_multiple == 0 and padded.shape[3] % model.size_multiple == 0

    output, penalty = model.forward_train(padded, torch.tensor([0.1, 0.05]))
    assert output.shape == padded.shape
    assert penalty.dim() == 0 and torch.isfinite(penalty)
    cropped = output[:, :, : size[0], : size[1]]
    assert cropped.shape == clean.shape
    loss = F.mse_loss(cropped, clean) + penalty
    loss.backward()

    for name, param in model.named_parameters():
        assert param.grad is not None, f"{family}: {name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{family}: {name} has a non-finite gradient"
    assert any(param.grad.abs().sum() > 0 for param in model.parameters())


@pytest.mark.parametrize("family", families())
def test_encode_gives_documented_latent(family):
    model = tiny_model(family).eval()
    x = torch.rand(2, 3, 24, 32)
    with torch.no_grad():
        latent = model.encode(x, 0.1)
    step = model.size_multiple
    assert latent.shape == (2, latent_channels(model), 24 // step, 32 // step)


def test_undercomplete_latent_is_smaller_than_input():
    model = tiny_model("undercomplete").eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        latent = model.encode(x)
    assert latent.numel() < x.numel()


def test_undercomplete_refuses_a_latent_as_large_as_the_input():
    """4 halvings of 3 channels would need fewer than 3 * 4**2 = 48 latent channels."""
    with pytest.raises(ConfigError, match="undercomplete"):
        create_model("undercomplete", {"widths": [4, 8, 16], "latent_channels": 48})
    create_model("undercomplete", {"widths": [4, 8, 16], "latent_channels": 47})


def test_sparse_l1_penalty_is_positive_and_scales_with_weight():
    torch.manual_seed(2)
    x = torch.rand(2, 3, 16, 16)
    model = tiny_model("sparse", sparsity="l1", sparsity_weight=1e-2).train()
    _, penalty = model.forward_train(x, 0.1)
    assert penalty.item() > 0
    model.config.sparsity_weight = 2e-2
    _, doubled = model.forward_train(x, 0.1)
    assert doubled.item() == pytest.approx(2 * penalty.item(), rel=1e-5)


def test_sparse_topk_keeps_the_k_largest_channels_at_each_position():
    model = tiny_model("sparse", sparsity="topk", k_fraction=0.25, latent_channels=16).eval()
    torch.manual_seed(3)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        latent = model.encode(x, 0.1)
        model.config.sparsity = "l1"
        dense = model.encode(x, 0.1)
        model.config.sparsity = "topk"
        _, penalty = model.forward_train(x, 0.1)
    k = 4  # 0.25 of 16 channels
    nonzero_per_position = (latent != 0).sum(dim=1)
    assert int(nonzero_per_position.max()) <= k
    assert float(nonzero_per_position.float().mean()) >= 0.9 * k  # ReLU may zero a few of the winners
    kept = latent != 0
    smallest_kept = torch.where(kept, dense, torch.full_like(dense, float("inf"))).amin(dim=1)
    largest_dropped = torch.where(kept, torch.full_like(dense, -float("inf")), dense).amax(dim=1)
    has_both = kept.any(dim=1) & (~kept).any(dim=1)
    assert bool((smallest_kept[has_both] >= largest_dropped[has_both]).all())
    assert penalty.item() == 0.0


def test_variational_samples_in_training_and_is_repeatable_in_eval():
    model = tiny_model("variational")
    x = torch.rand(1, 3, 16, 16)
    model.train()
    with torch.no_grad():
        first, kl = model.forward_train(x, 0.1)
        second, _ = model.forward_train(x, 0.1)
    assert not torch.allclose(first, second)
    assert kl.item() > 0
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x, 0.1), model(x, 0.1))


def test_variational_sample_has_asked_shape():
    model = tiny_model("variational").eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        images = model.sample(3, 18, 21, generator=generator)
        again = model.sample(3, 18, 21, generator=torch.Generator().manual_seed(0))
    assert images.shape == (3, 3, 18, 21)
    assert torch.equal(images, again)


def test_unet_is_residual():
    """With an all-zero tail the predicted noise is zero, so the output is the input."""
    model = tiny_model("unet").eval()
    torch.nn.init.zeros_(model.tail.weight)
    torch.nn.init.zeros_(model.tail.bias)
    x = torch.rand(2, 3, 16, 20)
    with torch.no_grad():
        assert torch.equal(model(x, 0.2), x)


@pytest.mark.parametrize("family", families())
def test_config_json_round_trip(family):
    cls = config_class(family)
    config = cls.from_dict(tiny_config(family, channels=1))
    text = config.to_json()
    assert json.loads(text)["version"] == cls.VERSION
    again = cls.from_json(text)
    assert again == config
    assert isinstance(again.widths, tuple)
    assert create_model(family, json.loads(text)).config == config


@pytest.mark.parametrize("family", families())
def test_config_refuses_unknown_field_and_newer_version(family):
    cls = config_class(family)
    good = cls().to_dict()
    with pytest.raises(ConfigError, match="unknown field"):
        cls.from_dict({**good, "colour_space": "lab"})
    with pytest.raises(ConfigError, match="newer"):
        cls.from_dict({**good, "version": cls.VERSION + 1})
    with pytest.raises(ConfigError):
        cls.from_json("[1, 2]")
    with pytest.raises(ConfigError):
        cls.from_json("{not json")


OUT_OF_BOUNDS = [
    (family, field, value)
    for family in ("unet", "undercomplete", "sparse", "variational")
    for field, value in [("channels", 2), ("widths", [8]), ("widths", [2] * 7), ("blocks", 9), ("blocks", -1)]
] + [
    ("unet", "widths", [4, 0]),
    ("undercomplete", "latent_channels", 0),
    ("sparse", "latent_channels", 0),
    ("sparse", "sparsity", "l2"),
    ("sparse", "sparsity_weight", -1.0),
    ("sparse", "k_fraction", 0.0),
    ("sparse", "k_fraction", 1.5),
    ("variational", "latent_channels", 0),
    ("variational", "kl_weight", -1.0),
]


@pytest.mark.parametrize(("family", "field", "value"), OUT_OF_BOUNDS)
def test_config_refuses_out_of_bounds_values(family, field, value):
    with pytest.raises(ConfigError):
        create_model(family, {field: value})


def test_create_model_unknown_family_lists_known_ones():
    with pytest.raises(UnknownNameError) as caught:
        create_model("nope")
    message = str(caught.value)
    assert "nope" in message
    for family in families():
        assert family in message
    assert caught.value.known == families()
    assert isinstance(caught.value, KeyError)


def test_create_model_refuses_another_familys_config():
    with pytest.raises(TypeError):
        create_model("unet", config_class("sparse")())


@pytest.mark.parametrize("family", families())
def test_receptive_margin_is_aligned_and_covers_radius(family):
    for blocks in (0, 1, 2):
        model = create_model(family, tiny_config(family, blocks=blocks))
        assert model.receptive_margin % model.size_multiple == 0
        assert model.receptive_margin >= model.receptive_radius
        assert 3 * model.receptive_margin // 8 >= model.receptive_radius  # what the tiler relies on


@pytest.mark.parametrize("family", families())
def test_receptive_radius_bounds_the_true_field(family):
    """An output pixel's gradient never reaches input pixels further away than ``receptive_radius``."""
    model = tiny_model(family).eval()
    if family == "sparse":
        model.config.sparsity = "l1"  # top-k is global by nature
    size, step = 72, model.size_multiple
    x = torch.rand(1, 3, size, size, requires_grad=True)
    reach = 0
    for offset in range(step):  # every position inside a cell of the strided grid
        row, col = size // 2 + offset, size // 2 + (offset + 1) % step
        x.grad = None
        model(x, 0.1)[0, :, row, col].sum().backward()
        rows, cols = torch.nonzero(x.grad[0].abs().sum(0) > 0, as_tuple=True)
        reach = max(reach, int((rows - row).abs().max()), int((cols - col).abs().max()))
    assert 0 < reach <= model.receptive_radius


def test_nafnet_blocks_start_as_identities_and_normalise_each_pixel_alone():
    from denoiser.models.nafnet import ChannelNorm, NAFBlock

    torch.manual_seed(0)
    x = torch.randn(2, 8, 9, 11)
    assert torch.equal(NAFBlock(8)(x), x)  # both residual branches start at zero
    normed = ChannelNorm(8)(x)
    assert torch.allclose(normed.mean(dim=1), torch.zeros(2, 9, 11), atol=1e-5)
    assert torch.allclose(normed.var(dim=1, unbiased=False), torch.ones(2, 9, 11), atol=1e-3)
    shifted = x.clone()
    shifted[:, :, 0, 0] += 100.0  # one pixel changed: no other pixel's normalisation moves
    assert torch.allclose(ChannelNorm(8)(shifted)[:, :, 1:], normed[:, :, 1:])
