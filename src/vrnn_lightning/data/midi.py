"""Piano rolls to standard MIDI files, with mido."""

from pathlib import Path

import mido
from torch import Tensor

TICKS_PER_STEP = 240  # at mido's default 120 beats per minute and 480 ticks per beat: an eighth note, 0.25 s


def write_midi(path: Path, roll: Tensor, lowest_midi: int, velocity: int = 80) -> Path:
    """Write a (T, keys) 0/1 piano roll as a one-track MIDI file: a key held over consecutive steps is one note."""
    track = mido.MidiTrack()
    previous = [False] * roll.shape[1]
    wait = 0  # ticks since the last event
    for step in [[bool(v) for v in row] for row in roll.tolist()] + [[False] * roll.shape[1]]:
        for key, (was, now) in enumerate(zip(previous, step, strict=True)):
            if was != now:
                kind = "note_on" if now else "note_off"
                track.append(mido.Message(kind, note=lowest_midi + key, velocity=velocity if now else 0, time=wait))
                wait = 0
        previous = step
        wait += TICKS_PER_STEP
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(track)
    midi.save(str(path))
    return Path(path)
