"""Ingest throughput: rackvae against music21 (the original project's parser), bare mido and symusic.

The same files (the shipped groove + freedoom corpora) in one run:

- music21 ``converter.parse``: what the original project did before encoding; parsing alone, on an
  evenly spaced sample (it is slow), scaled per file. Its encoding came on top, so the ratios
  against it are conservative.
- ``mido.MidiFile`` and ``symusic.Score``: parsing only, every file, one core.
- rackvae ``midi.read`` (parsing) and ``encode_song`` (the grid), one core: where rackvae's time goes.
- rackvae ``ingest`` end to end (read, encode, assemble the dataset) with 1 and 2 worker processes.

bars/s counts the bars with notes in the files' percussion parts (rackvae's "bars seen" with the demo's
settings: Extended map, 4/4, 16ths), the same number for every method.

    .venv/bin/python bench/bench_ingest.py [--music21-sample 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIDI = Path(os.environ.get("RACKVAE_MIDI", REPO / "data" / "midi"))


def timed(work: Callable[[], object], repeats: int = 1) -> float:
    """Seconds ``work`` takes, the best of ``repeats`` runs (other processes share the machine)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--music21-sample", type=int, default=60, help="files music21 parses (evenly spaced)")
    args = parser.parse_args()

    import mido
    import music21
    import symusic

    from rackvae import midi
    from rackvae.codec import EncodingSettings, encode_song
    from rackvae.dataset import find_midi_files, ingest

    settings = EncodingSettings(percussion_map="extended")
    files, _ = find_midi_files([MIDI / "groove", MIDI / "freedoom"])
    paths = [str(path) for path in files]
    megabytes = sum(path.stat().st_size for path in files) / 1e6
    for path in paths:  # warm the page cache so every method reads from memory
        Path(path).read_bytes()

    # rackvae on one core, split into its two stages.
    songs = [midi.read(path) for path in paths]
    bars_per_file = [encode_song(song, settings).counts.bars_seen for song in songs]
    bars = sum(bars_per_file)
    read_seconds = timed(lambda: [midi.read(path) for path in paths], repeats=3)
    encode_seconds = timed(lambda: [encode_song(song, settings) for song in songs], repeats=3)

    ingest_seconds = {
        jobs: timed(lambda j=jobs: ingest(paths, settings, jobs=j, progress=False), repeats=3)
        for jobs in (1, 2)
    }
    symusic_seconds = timed(lambda: [symusic.Score(path) for path in paths], repeats=3)
    mido_seconds = timed(lambda: [mido.MidiFile(path, clip=True) for path in paths])

    sample = list(range(0, len(paths), max(1, len(paths) // args.music21_sample)))[: args.music21_sample]
    music21_seconds = timed(lambda: [music21.converter.parse(paths[i], forceSource=True) for i in sample])
    music21_per_file = music21_seconds / len(sample)
    music21_per_bar = music21_seconds / max(1, sum(bars_per_file[i] for i in sample))

    rows = [
        (f"music21 converter.parse, 1 core ({len(sample)}-file sample)", music21_per_file * len(paths),
         music21_per_bar * bars),
        ("mido.MidiFile parse, 1 core", mido_seconds, mido_seconds),
        ("symusic.Score parse (C++), 1 core", symusic_seconds, symusic_seconds),
        ("rackvae midi.read parse, 1 core", read_seconds, read_seconds),
        ("rackvae ingest (read+encode+dataset), 1 job", ingest_seconds[1], ingest_seconds[1]),
        ("rackvae ingest (read+encode+dataset), 2 jobs", ingest_seconds[2], ingest_seconds[2]),
    ]  # fmt: skip
    print(
        f"{len(paths)} files (groove + freedoom), {megabytes:.1f} MB, "
        f"{bars:,} bars with notes in percussion parts"
    )
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print()
    print(f"{'method':<58}{'seconds':>9}{'files/s':>10}{'bars/s':>11}{'x music21':>11}")
    music21_rate = len(paths) / rows[0][1]
    for name, seconds, bar_seconds in rows:
        rate = len(paths) / seconds
        print(
            f"{name:<58}{seconds:>9.2f}{rate:>10,.0f}{bars / bar_seconds:>11,.0f}"
            f"{rate / music21_rate:>10.1f}x"
        )
    print()
    total = ingest_seconds[1]
    rest = total - read_seconds - encode_seconds
    print("where rackvae's time goes (ingest with 1 job):")
    print(f"  read/parse          {read_seconds:6.2f} s  {read_seconds / total:6.1%}")
    print(f"  encode              {encode_seconds:6.2f} s  {encode_seconds / total:6.1%}")
    print(f"  find files, dataset {rest:6.2f} s  {rest / total:6.1%}")
    print(f"  ingest with 2 jobs is {ingest_seconds[1] / ingest_seconds[2]:.2f}x ingest with 1 job")
    print(f"  symusic parses {read_seconds / symusic_seconds:.0f}x faster than rackvae's reader")
    return 0


if __name__ == "__main__":
    sys.exit(main())
