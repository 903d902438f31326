"""Layer widths that are not multiples of the SIMD widths: the desktop kernels' masked tails and the
Cortex-M7 kernels' leftover rows must compute what the reference interpreters compute, like the
regular widths of tests/test_core_parity.py."""

from __future__ import annotations

import numpy as np
import pytest

from rackvae.core import Decoder
from rackvae.export.metadata import XenMetadata
from rackvae.export.tflite import VARIANTS, run_litert, run_tflite_micro, tflite_bytes
from rackvae.model import decode_layers, random_decoder_layers

# (decoder widths, ticks x rows = outputs): hidden widths 7, 33, 15, 129 and outputs 60 and 91 fall
# between 4-, 8-, 16- and 64-lane groups.
SHAPES = {
    "60": ((3, 7, 33, 60), XenMetadata("note", rows=12, ticks=5, latent_scale=3, base_note=40)),
    "91": ((3, 15, 129, 91), XenMetadata("note", rows=13, ticks=7, latent_scale=3, base_note=40)),
}
N_LATENTS = 200


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_odd_widths_decode_like_the_reference(shape: str, variant: str) -> None:
    sizes, metadata = SHAPES[shape]
    layers = random_decoder_layers(sizes, seed=11)
    data = tflite_bytes(layers, metadata, variant, model_name=f"odd_{shape}")
    latents = np.random.default_rng(5).uniform(-3, 3, (N_LATENTS, 3)).astype(np.float32)
    decoder = Decoder.from_bytes(data, source=f"odd_{shape}_{variant}")
    core = decoder.decode(latents).reshape(N_LATENTS, -1)
    assert core.shape == (N_LATENTS, sizes[-1])
    if variant == "int8":
        assert np.array_equal(core, run_tflite_micro(data, latents))
    else:
        assert np.abs(core - run_litert(data, latents)).max() <= 1e-5
    if variant == "float32":
        assert np.abs(core - decode_layers(layers, latents)).max() <= 1e-5
    # one latent at a time (the module's path) gives the same bits as the batch
    singles = np.concatenate([decoder.decode(latent[None, :]) for latent in latents[:20]])
    assert np.array_equal(singles.reshape(20, -1), core[:20])
