"""Sub-commands of the ``rackvae`` CLI (see ``rackvae.cli``)."""
