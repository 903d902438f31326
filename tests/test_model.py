"""The VAE's shape rules, its loss pieces and its decoder against plain numpy."""

from __future__ import annotations

import dataclasses
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rackvae.model import (
    ModelConfig,
    binary_cross_entropy,
    decode,
    decode_layers,
    decoder_layers,
    encode,
    init_params,
    kl_per_dim,
    loss_terms,
)


def test_geometric_sizes_divide_by_one_factor_like_the_original() -> None:
    # 192 / 4 / 4 / 4 = 3 (the demo model) and 768 -> 120 -> 19 -> 3 (the issues' larger model).
    assert ModelConfig(16, 12).encoder_sizes() == (48, 12)
    assert ModelConfig(16, 12).decoder_sizes() == (3, 12, 48, 192)
    assert ModelConfig(16, 48).decoder_sizes() == (3, 19, 120, 768)


def test_linear_and_explicit_sizes() -> None:
    assert ModelConfig(16, 12, layer_spacing="linear").encoder_sizes() == (129, 66)
    assert ModelConfig(16, 12, hidden_layers=3, layer_spacing="linear").encoder_sizes() == (145, 98, 50)
    config = ModelConfig(16, 12, hidden_sizes=(64, 8))
    assert config.decoder_sizes() == (3, 8, 64, 192)
    with pytest.raises(ValueError, match="layer_spacing"):
        ModelConfig(16, 12, layer_spacing="cubic").encoder_sizes()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"velocity_weight": -1.0}, "finite and >= 0, got -1.0, 1.0"),
        ({"offset_weight": float("nan")}, "finite and >= 0, got 1.0, nan"),  # NaN passed a `< 0` test
        ({"velocity_weight": float("inf")}, "finite and >= 0, got inf, 1.0"),
        ({"velocity_error": "mean"}, "'squared' or 'absolute', got 'mean'"),
        ({"offset_error": "Absolute"}, "'squared' or 'absolute', got 'Absolute'"),
    ],
)
def test_groove_loss_settings_out_of_range_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ModelConfig(16, 12, outputs=("hits", "velocity", "offset"), **fields)


def test_config_round_trips_through_a_dict() -> None:
    config = ModelConfig(16, 12, latent_dim=4, latent_scale=2.5, hidden_sizes=(40, 10))
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_decoder_layers_match_the_flax_decoder_in_numpy() -> None:
    config = ModelConfig(16, 12)
    params = init_params(config, seed=3)
    layers = decoder_layers(params)
    assert [kernel.shape for kernel, _ in layers] == [(3, 12), (12, 48), (48, 192)]
    latents = np.random.default_rng(0).uniform(-3, 3, (64, 3)).astype(np.float32)
    h = latents.astype(np.float64)
    for kernel, bias in layers[:-1]:
        h = np.maximum(h @ kernel + bias, 0.0)
    expected = 1.0 / (1.0 + np.exp(-(h @ layers[-1][0] + layers[-1][1])))
    np.testing.assert_allclose(decode_layers(layers, latents), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(decode(config, params, latents)), expected, atol=1e-6)


def test_init_is_deterministic_per_seed() -> None:
    config = ModelConfig(16, 12)
    same = jax.tree.map(np.array_equal, init_params(config, 1), init_params(config, 1))
    assert all(jax.tree.leaves(same))
    other = jax.tree.map(np.array_equal, init_params(config, 1), init_params(config, 2))
    assert not all(jax.tree.leaves(other))


def test_binary_cross_entropy_and_its_gradient() -> None:
    logits = jnp.array([-30.0, -4.0, -0.5, 0.0, 0.5, 4.0, 30.0])
    for target in (0.0, 1.0):
        targets = jnp.full_like(logits, target)
        x = np.asarray(logits, np.float64)
        p = 1.0 / (1.0 + np.exp(-x))
        # -log(p) = log(1 + e^-x) and -log(1 - p) = log(1 + e^x), in float64 without cancellation.
        expected = np.logaddexp(0.0, -x) if target else np.logaddexp(0.0, x)
        np.testing.assert_allclose(binary_cross_entropy(logits, targets), expected, rtol=1e-5, atol=1e-6)
        grad = jax.grad(lambda x, t=targets: binary_cross_entropy(x, t).sum())(logits)
        np.testing.assert_allclose(grad, p - target, atol=1e-6)
    # Saturated logits stay finite (a sigmoid followed by log would give inf).
    extreme = binary_cross_entropy(jnp.array([-1000.0, 1000.0]), jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(extreme, [1000.0, 1000.0])


def test_kl_per_dimension_known_values() -> None:
    mean = jnp.array([[0.0, 1.0, 0.0]])
    log_var = jnp.array([[0.0, 0.0, math.log(2.0)]])
    np.testing.assert_allclose(kl_per_dim(mean, log_var), [[0.0, 0.5, 0.5 * (1 - math.log(2.0))]], atol=1e-6)


def test_the_mean_is_squashed_into_the_scale_and_the_log_variance_into_its_own_bound() -> None:
    huge = jnp.full((4, 16, 12), 1e4)
    for bound in (2.0, 7.0):
        config = ModelConfig(16, 12, latent_scale=2.0, log_var_bound=bound)
        mean, log_var = encode(config, init_params(config), huge)
        assert float(jnp.abs(mean).max()) <= 2.0 and float(jnp.abs(log_var).max()) <= bound
        # The inputs are large enough to reach both bounds.
        assert float(jnp.abs(mean).max()) > 1.9 and float(jnp.abs(log_var).max()) > 0.95 * bound
    config = ModelConfig(16, 12, latent_scale=2.0)  # default: the log-variance is not bounded
    mean, log_var = encode(config, init_params(config), huge)
    assert float(jnp.abs(mean).max()) <= 2.0 and float(jnp.abs(log_var).max()) > 100.0
    with pytest.raises(ValueError, match="log_var_bound"):
        ModelConfig(16, 12, log_var_bound=0.0)


def test_configs_saved_before_the_bound_keep_the_means_scale_and_macs_are_counted() -> None:
    old = ModelConfig(16, 12, latent_scale=2.5).to_dict()
    del old["log_var_bound"]
    assert ModelConfig.from_dict(old).log_var_bound == 2.5
    assert ModelConfig.from_dict(ModelConfig(16, 12).to_dict()).log_var_bound is None
    wide = ModelConfig(16, 12, hidden_sizes=(320, 192, 64))
    assert wide.decoder_sizes() == (3, 64, 192, 320, 192)
    assert wide.decoder_macs() == 3 * 64 + 64 * 192 + 192 * 320 + 320 * 192 == 135_360
    assert ModelConfig(16, 12).decoder_macs() == 3 * 12 + 12 * 48 + 48 * 192  # the original's 9,828


def test_default_widths_are_narrowed_to_the_mac_budget_and_explicit_ones_kept() -> None:
    wide = ModelConfig(16, 66)  # freedoom's 66 pitched rows: the rule gives 3-21-149-1056
    assert wide.decoder_sizes() == (3, 21, 149, 1056) and wide.decoder_macs() == 160_536
    fitted = wide.within_macs(150_000)
    # 93 % of the rule's widths: 3*19 + 19*138 + 138*1056 = 148,407; 94 % (140, 19) needs 150,557
    assert fitted.hidden_sizes == (138, 19) and fitted.decoder_macs() == 148_407
    assert dataclasses.replace(wide, hidden_sizes=(140, 19)).decoder_macs() > 150_000
    assert fitted.ticks == 16 and fitted.rows == 66 and fitted.latent_dim == 3
    small = ModelConfig(16, 12)
    assert small.within_macs(150_000) is small  # fits: the rule's widths stay
    explicit = ModelConfig(16, 66, hidden_sizes=(320, 192, 64))
    assert explicit.within_macs(150_000) is explicit  # the user's widths are the user's to change
    assert ModelConfig(16, 66).within_macs(1_000) == ModelConfig(16, 66)  # cannot fit: unchanged


def test_loss_terms_sample_only_with_noise() -> None:
    config = ModelConfig(16, 12)
    params = init_params(config)
    x = (np.random.default_rng(0).random((8, 16, 12)) < 0.3).astype(np.float32)
    at_mean_1 = loss_terms(config, params, x, None)
    at_mean_2 = loss_terms(config, params, x, None)
    sampled = loss_terms(config, params, x, jax.random.normal(jax.random.PRNGKey(0), (8, 3)))
    np.testing.assert_array_equal(at_mean_1[0], at_mean_2[0])
    assert not np.allclose(at_mean_1[0], sampled[0])
    np.testing.assert_array_equal(at_mean_1[1], sampled[1])  # KL does not depend on the sample
    assert at_mean_1[0].shape == (8,) and at_mean_1[1].shape == (8, 3)


def test_mean_and_log_variance_are_separate_layers_in_numpy() -> None:
    """One matmul computes both; each still has its own ``enc_mean`` / ``enc_log_var`` parameters."""
    config = ModelConfig(16, 12)
    params = init_params(config, 3)
    encoder = {
        name: {k: np.asarray(v) for k, v in layer.items()} for name, layer in params["encoder"].items()
    }
    assert encoder["enc_mean"]["kernel"].shape == encoder["enc_log_var"]["kernel"].shape == (12, 3)
    assert not np.array_equal(encoder["enc_mean"]["kernel"], encoder["enc_log_var"]["kernel"])
    x = np.random.default_rng(0).integers(0, 2, (5, 192)).astype(np.float32)
    h = x
    for name in ("enc_0", "enc_1"):
        h = np.maximum(h @ encoder[name]["kernel"] + encoder[name]["bias"], 0.0)
    mean, log_var = encode(config, params, jnp.asarray(x))
    for got, name in ((mean, "enc_mean"), (log_var, "enc_log_var")):
        want = h @ encoder[name]["kernel"] + encoder[name]["bias"]
        want = 3.0 * np.tanh(want / 3.0) if name == "enc_mean" else want  # the log-variance: unbounded
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
