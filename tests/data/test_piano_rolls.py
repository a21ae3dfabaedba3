"""Piano rolls a musician can read: each piece at its own length, real beside model, at a size notes show."""

import numpy as np
import torch

from vrnn_lightning.data.piano_rolls import DPI, STEP_INCHES, crop, draw, note_name, piano_roll_pictures
from vrnn_lightning.models import RNN, Bernoulli


def test_nothing_past_a_pieces_end_is_kept():
    rolls = torch.ones(2, 30, 88)  # the padding is ones here: had it been kept, it would show
    pieces = crop(rolls, torch.tensor([10, 30]))
    assert [tuple(p.shape) for p in pieces] == [(10, 88), (30, 88)]


def test_a_drawn_step_is_several_pixels_wide_and_the_octaves_are_named():
    one_note = torch.zeros(200, 88)
    one_note[100, 39] = 1  # middle C held for one step
    image = draw([[("piece", one_note), ("model", one_note)]], lowest_midi=21)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    assert image.shape[1] >= 2 * 200 * STEP_INCHES * DPI  # two panels of 200 steps, 5 px a step
    assert image.shape[0] >= 88 * 2  # at least two pixels a key
    assert (image < 100).any()  # the note is drawn dark
    assert note_name(60) == "C4" and note_name(21 + 3) == "C1"


def test_pictures_of_a_model_on_ragged_pieces():
    torch.manual_seed(0)
    model = RNN(Bernoulli(88), h_dim=8, x_feat_dim=8, hidden_dim=8)
    x = (torch.rand(3, 24, 88) < 0.05).float()
    mask = (torch.arange(24) < torch.tensor([24, 16, 9])[:, None]).float()
    pictures = piano_roll_pictures(model, x, mask, lowest_midi=21)
    assert set(pictures) == {"images/reconstructions", "images/samples", "images/completions"}
    assert all(p.ndim == 3 and p.shape[2] == 3 for p in pictures.values())
