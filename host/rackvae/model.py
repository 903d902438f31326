"""The sequence VAE (Flax): dense encoder to a squashed Gaussian latent, dense decoder to a sigmoid roll.

The decoder is the part that ships: ``decoder_layers`` turns trained parameters into plain numpy
``(kernel[in, out], bias[out])`` pairs (hidden layers ReLU, the last one sigmoid), the form the
exporter and the C core consume, and ``decode_layers`` is the JAX reference every parity test uses.

Groove models (``ModelConfig.outputs`` = hits, velocity, offset) decode more channels through the same
graph, channel-major: ``[hits: ticks*rows][velocity: ticks*rows][offset: ticks*rows]``, each block
tick-major, all behind the one sigmoid. Hits are probabilities (the first block is exactly a hits-only
model's output), velocity is the sigmoid as a fraction of 127, and the offset in steps is the sigmoid
minus 0.5 (= 0.5 * tanh(x / 2): a tanh scaled to half a step, as GrooVAE's, on the graph every exporter
and the C core already run). The encoder reads the same channels (offset + 0.5, velocity / 127).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

LayerSpacing = Literal["geometric", "linear"]
GrooveError = Literal["squared", "absolute"]
# The channels a model can decode, in their order in the output (a model takes "hits" and any others).
OUTPUTS = ("hits", "velocity", "offset")
DecoderLayers = list[tuple[np.ndarray, np.ndarray]]
Params = dict[str, Any]


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the VAE. ``hidden_sizes`` (encoder order, widest first) overrides the spacing rule.

    The latent mean is squashed into ±``latent_scale`` (the range the module's knobs cover). The
    log-variance has its own bound ``log_var_bound`` (a scaled tanh) or none (None): squashed with the
    mean's scale, as the original did, it saturated at -scale where it gets no gradient, so every
    posterior had the same width.
    """

    ticks: int
    rows: int
    latent_dim: int = 3
    hidden_layers: int = 2
    latent_scale: float = 3.0
    layer_spacing: LayerSpacing = "geometric"
    hidden_sizes: tuple[int, ...] | None = None
    log_var_bound: float | None = None
    # Decoded channels (see the module docstring) and the weights of the squared errors of velocity
    # and offset in the loss, counted on the cells where the target has a hit.
    outputs: tuple[str, ...] = ("hits",)
    velocity_weight: float = 1.0
    offset_weight: float = 1.0
    # The errors those weights multiply: "squared" (GrooVAE's) or "absolute" (the MAE that eval reports,
    # minimised by the median rather than the mean).
    velocity_error: GrooveError = "squared"
    offset_error: GrooveError = "squared"

    def __post_init__(self) -> None:
        if self.log_var_bound is not None and self.log_var_bound <= 0.0:
            raise ValueError(f"log_var_bound must be > 0 (or None: unbounded), got {self.log_var_bound}")
        object.__setattr__(self, "outputs", tuple(self.outputs))
        if self.outputs[:1] != ("hits",) or [o for o in OUTPUTS if o in self.outputs] != list(self.outputs):
            raise ValueError(
                f"outputs must be hits, then any of velocity, offset in that order; got {self.outputs}"
            )
        if not (0.0 <= self.velocity_weight < math.inf and 0.0 <= self.offset_weight < math.inf):
            raise ValueError(
                f"velocity_weight and offset_weight must be finite and >= 0, got"
                f" {self.velocity_weight}, {self.offset_weight}"
            )
        for error in (self.velocity_error, self.offset_error):
            if error not in ("squared", "absolute"):
                raise ValueError(
                    f"velocity_error and offset_error are 'squared' or 'absolute', got {error!r}"
                )

    @property
    def input_size(self) -> int:
        """Cells of one channel, ``ticks * rows`` (the hidden widths follow it, whatever the channels)."""
        return self.ticks * self.rows

    @property
    def channels(self) -> int:
        return len(self.outputs)

    @property
    def output_size(self) -> int:
        """Decoder outputs (and encoder inputs): ``channels * ticks * rows``."""
        return self.channels * self.input_size

    def encoder_sizes(self) -> tuple[int, ...]:
        """Hidden layer widths from the input towards the latent, e.g. 768 → (120, 19) → 3."""
        if self.hidden_sizes is not None:
            return tuple(int(s) for s in self.hidden_sizes)
        steps = self.hidden_layers + 1
        if self.layer_spacing == "geometric":
            # The original divides by one factor per layer: input / f**i with f**steps = input / latent.
            factor = (self.input_size / self.latent_dim) ** (1.0 / steps)
            sizes = [int(self.input_size / factor**i) for i in range(1, steps)]
        elif self.layer_spacing == "linear":
            gap = self.input_size - self.latent_dim
            sizes = [round(self.input_size - gap * i / steps) for i in range(1, steps)]
        else:
            raise ValueError(f"layer_spacing must be 'geometric' or 'linear', got {self.layer_spacing!r}")
        return tuple(max(s, self.latent_dim) for s in sizes)

    def decoder_sizes(self) -> tuple[int, ...]:
        """Decoder widths: latent → mirrored hidden widths → ``channels * ticks * rows``."""
        return (self.latent_dim, *reversed(self.encoder_sizes()), self.output_size)

    def decoder_macs(self) -> int:
        """Multiply-accumulates of one decode (the module's cost): the sum of inputs x outputs per layer."""
        return sum(a * b for a, b in itertools.pairwise(self.decoder_sizes()))

    def within_macs(self, budget: int) -> ModelConfig:
        """This shape, or, when its widths come from the spacing rule (no ``hidden_sizes``) and the
        decoder needs more than ``budget`` MACs, the rule's widths scaled down by the least whole percent
        that fits (a wide pitched corpus: 66 rows give 3-21-149-1056, 160,536 MACs). Explicit
        ``hidden_sizes`` are left as given; a shape that cannot fit comes back unchanged."""
        if self.hidden_sizes is not None or self.decoder_macs() <= budget:
            return self
        rule = self.encoder_sizes()
        for percent in range(99, 0, -1):
            sizes = tuple(max(self.latent_dim, width * percent // 100) for width in rule)
            narrowed = dataclasses.replace(self, hidden_sizes=sizes)
            if narrowed.decoder_macs() <= budget:
                return narrowed
        return self

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes) if self.hidden_sizes is not None else None
        data["outputs"] = list(self.outputs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        if data.get("hidden_sizes") is not None:
            data["hidden_sizes"] = tuple(data["hidden_sizes"])
        # Models saved before the bound existed squashed the log-variance with the mean's scale.
        data.setdefault("log_var_bound", data.get("latent_scale", cls.latent_scale))
        return cls(**data)


def squash(x: jax.Array, scale: float) -> jax.Array:
    """Scaled tanh: identity near 0, bounded to ±scale."""
    return scale * jnp.tanh(x / scale)


class Encoder(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = x.reshape((x.shape[0], -1)).astype(jnp.float32)
        for i, width in enumerate(self.config.encoder_sizes()):
            h = nn.relu(nn.Dense(width, name=f"enc_{i}")(h))
        # Mean and log-variance are two layers (their own parameters) computed as one matmul: cheaper.
        latent = self.config.latent_dim
        layers = [DenseParams(latent, name=name)(h.shape[-1]) for name in ("enc_mean", "enc_log_var")]
        kernel = jnp.concatenate([k for k, _ in layers], axis=1)
        bias = jnp.concatenate([b for _, b in layers])
        both = h @ kernel + bias
        mean, log_var = squash(both[:, :latent], self.config.latent_scale), both[:, latent:]
        if self.config.log_var_bound is not None:
            log_var = squash(log_var, self.config.log_var_bound)
        return mean, log_var


class DenseParams(nn.Module):
    """The parameters of an ``nn.Dense`` layer (same names and initialisers), without applying it."""

    features: int

    @nn.compact
    def __call__(self, inputs: int) -> tuple[jax.Array, jax.Array]:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (inputs, self.features))
        return kernel, self.param("bias", nn.initializers.zeros_init(), (self.features,))


class Decoder(nn.Module):
    """Latent → logits over the flattened tick-major roll (``index = tick * rows + row``)."""

    config: ModelConfig

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        h = z
        hidden = self.config.decoder_sizes()[1:-1]
        for i, width in enumerate(hidden):
            h = nn.relu(nn.Dense(width, name=f"dec_{i}")(h))
        return nn.Dense(self.config.output_size, name="dec_out")(h)


class VAE(nn.Module):
    config: ModelConfig

    def setup(self) -> None:
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)

    def __call__(self, x: jax.Array, noise: jax.Array | None) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(logits, mean, log_var) for the latent ``mean + exp(log_var / 2) * noise`` (the mean if None).

        ``noise`` is standard normal ``[N, latent_dim]``, drawn by the caller: the trainer draws a whole
        epoch's noise at once, which is cheaper than one draw per batch.
        """
        mean, log_var = self.encoder(x)
        z = mean if noise is None else mean + jnp.exp(0.5 * log_var) * noise
        return self.decoder(z), mean, log_var

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.encoder(x)

    def decode_logits(self, z: jax.Array) -> jax.Array:
        return self.decoder(z)


@jax.custom_vjp
def binary_cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Element-wise binary cross-entropy of ``sigmoid(logits)`` against 0/1 ``targets``, stable for any logit.

    ``relu(l) - l*t + log1p(exp(-|l|))`` with a hand-written gradient ``sigmoid(l) - t`` that reuses
    ``exp(-|l|)``: on a CPU this is several times faster than differentiating the library form, and it
    is the largest element-wise cost of a training step.
    """
    return _bce_forward(logits, targets)[0]


def _bce_forward(logits: jax.Array, targets: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    decay = jnp.exp(-jnp.abs(logits))
    return jax.nn.relu(logits) - logits * targets + jnp.log1p(decay), (logits, targets, decay)


def _bce_backward(saved: tuple[jax.Array, ...], grad: jax.Array) -> tuple[jax.Array, jax.Array]:
    logits, targets, decay = saved
    sigmoid = jnp.where(logits >= 0, 1.0, decay) / (1.0 + decay)
    return grad * (sigmoid - targets), jnp.zeros_like(targets)  # targets are data: no gradient


binary_cross_entropy.defvjp(_bce_forward, _bce_backward)


def loss_terms(
    config: ModelConfig, params: Params, x: jax.Array, noise: jax.Array | None
) -> tuple[jax.Array, jax.Array]:
    """Per-sequence loss terms: (reconstruction [N], KL per dimension [N, latent_dim]).

    The latent is sampled with standard normal ``noise`` ``[N, latent_dim]``, or is the encoder mean
    when ``noise`` is None (evaluation).

    Reconstruction is the binary cross-entropy summed over the ``ticks * rows`` hits (computed from
    logits, so it stays finite where a sigmoid would saturate); KL is against the unit Gaussian prior.
    A groove model's ``x`` holds its channels (``groove_inputs``): the squared (or absolute:
    ``velocity_error``, ``offset_error``) errors of the other channels' sigmoids, on the cells whose
    target has a hit, are added with their weights.
    """
    targets = x.reshape((x.shape[0], -1)).astype(jnp.float32)
    logits, mean, log_var = VAE(config).apply({"params": params}, targets, noise)
    cells = config.input_size
    hits = targets[:, :cells]
    reconstruction = binary_cross_entropy(logits[:, :cells], hits).sum(axis=-1)
    if config.channels > 1:
        shape = (x.shape[0], config.channels - 1, cells)
        difference = (jax.nn.sigmoid(logits[:, cells:]) - targets[:, cells:]).reshape(shape)
        kinds = {"velocity": config.velocity_error, "offset": config.offset_error}
        error = jnp.stack(
            [
                (jnp.square if kinds[name] == "squared" else jnp.abs)(difference[:, index])
                for index, name in enumerate(config.outputs[1:])
            ],
            axis=1,
        )
        weights = {"velocity": config.velocity_weight, "offset": config.offset_weight}
        channel_weights = jnp.array([weights[name] for name in config.outputs[1:]], jnp.float32)
        reconstruction += (error * hits[:, None, :]).sum(axis=-1) @ channel_weights
    return reconstruction, kl_per_dim(mean, log_var)


def groove_inputs(
    config: ModelConfig, rolls: np.ndarray, velocities: np.ndarray, offsets: np.ndarray
) -> np.ndarray:
    """The model's input (and target) ``[N, channels * ticks * rows]`` float32 for rolls ``[N, ticks,
    rows]`` with their velocities (0..127) and offsets (steps): hits, velocity / 127, offset + 0.5 (the
    sigmoid that decodes it), each channel 0 where there is no hit. A hits-only model gets the rolls."""
    count = len(rolls)
    hits = np.asarray(rolls, np.float32).reshape(count, -1)
    channels = {
        "hits": hits,
        "velocity": hits * np.asarray(velocities, np.float32).reshape(count, -1) / 127.0,
        "offset": hits * (np.asarray(offsets, np.float32).reshape(count, -1) + 0.5),
    }
    return np.concatenate([channels[name] for name in config.outputs], axis=1)


def split_outputs(config: ModelConfig, outputs: np.ndarray) -> dict[str, np.ndarray]:
    """A decoder's sigmoid outputs ``[N, channels * ticks * rows]`` as channels ``[N, ticks, rows]``:
    ``hits`` probabilities, ``velocity`` 0..127 and ``offset`` in steps (-0.5..0.5)."""
    blocks = np.asarray(outputs, np.float32).reshape(-1, config.channels, config.ticks, config.rows)
    scale = {"hits": (1.0, 0.0), "velocity": (127.0, 0.0), "offset": (1.0, -0.5)}
    return {
        name: blocks[:, index] * scale[name][0] + scale[name][1] for index, name in enumerate(config.outputs)
    }


def kl_per_dim(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """KL(N(mean, exp(log_var)) || N(0, 1)) for each latent dimension."""
    return -0.5 * (1.0 + log_var - jnp.square(mean) - jnp.exp(log_var))


@partial(jax.jit, static_argnums=0)
def loss_terms_at_mean(config: ModelConfig, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``loss_terms`` decoded from the encoder mean, compiled."""
    return loss_terms(config, params, x, None)


@partial(jax.jit, static_argnums=0)
def encode(config: ModelConfig, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Encoder outputs (mean, log_var) ``[N, latent_dim]`` for rolls ``[N, ticks, rows]`` or flattened."""
    return VAE(config).apply({"params": params}, x, method=VAE.encode)


@partial(jax.jit, static_argnums=0)
def decode(config: ModelConfig, params: Params, z: jax.Array) -> jax.Array:
    """Probabilities ``[N, ticks * rows]`` (tick-major) for latents ``[N, latent_dim]``."""
    return jax.nn.sigmoid(VAE(config).apply({"params": params}, z, method=VAE.decode_logits))


def init_params(config: ModelConfig, seed: int = 0) -> Params:
    """Fresh parameters for ``config`` (deterministic for a seed)."""
    init_rng, _ = jax.random.split(jax.random.PRNGKey(seed))
    dummy = jnp.zeros((1, config.output_size), jnp.float32)
    return VAE(config).init(init_rng, dummy, None)["params"]


def decoder_layers(params: Params) -> DecoderLayers:
    """The decoder as numpy ``(kernel[in, out], bias[out])`` pairs, input side first."""
    decoder = params["decoder"]
    hidden = sorted((k for k in decoder if k.startswith("dec_") and k != "dec_out"), key=lambda k: int(k[4:]))
    return [
        (np.asarray(decoder[name]["kernel"], np.float32), np.asarray(decoder[name]["bias"], np.float32))
        for name in [*hidden, "dec_out"]
    ]


@jax.jit
def _decode_layers_jit(layers: list[tuple[jax.Array, jax.Array]], z: jax.Array) -> jax.Array:
    h = z
    for kernel, bias in layers[:-1]:
        h = jax.nn.relu(h @ kernel + bias)
    kernel, bias = layers[-1]
    return jax.nn.sigmoid(h @ kernel + bias)


def decode_layers(layers: DecoderLayers, latents: np.ndarray) -> np.ndarray:
    """JAX reference decode: latents ``[N, latent_dim]`` → probabilities ``[N, ticks * rows]`` (float32)."""
    jax_layers = [(jnp.asarray(k), jnp.asarray(b)) for k, b in layers]
    return np.asarray(_decode_layers_jit(jax_layers, jnp.asarray(latents, jnp.float32)))


def random_decoder_layers(sizes: tuple[int, ...], seed: int = 0) -> DecoderLayers:
    """Glorot-uniform random decoder of the given widths: for tests and benchmarks of export and the core."""
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        kernel = rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)
        bias = rng.uniform(-0.1, 0.1, fan_out).astype(np.float32)
        layers.append((kernel, bias))
    return layers
