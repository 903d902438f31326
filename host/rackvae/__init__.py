"""rackvae: sequence VAEs trained on MIDI in JAX, decoded by a portable C core on a Eurorack module."""

__version__ = "0.1.0"
