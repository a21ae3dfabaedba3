"""Property-based tests: the text data module on arbitrary Unicode text."""

import tempfile
from pathlib import Path

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vrnn_lightning.data import CharDataModule, Vocabulary
from vrnn_lightning.errors import ConfigError

# Any Unicode text Python can write as UTF-8 (st.text leaves out lone surrogates), NUL included.
texts = st.text(min_size=0, max_size=400)


@given(texts)
def test_vocabulary_round_trips_any_text(text):
    vocab = Vocabulary(text)
    assert vocab.chars == "".join(sorted(set(text)))
    ids = vocab.encode(text)
    assert vocab.decode(ids) == text
    assert ids.numel() == 0 or int(ids.max()) < len(vocab)


@settings(max_examples=150, deadline=None)
@given(texts, st.integers(1, 40), st.integers(1, 5))
def test_data_module_takes_any_text_or_names_why_not(text, seq_len, batch_size):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.txt"
        path.write_bytes(text.encode("utf-8"))
        try:
            data = CharDataModule(str(path), seq_len=seq_len, batch_size=batch_size, batches_per_epoch=2)
        except ConfigError as err:
            message = str(err)
            assert "\n" not in message and message.startswith("data.path=")
            assert ("\0" in text) or (not text) or ("too few for a training window" in message)
            return
    assert "\0" not in text and text
    assert torch.equal(torch.cat([data.train_ids, data.val_ids, data.test_ids]), data.vocab.encode(text))
    assert len(data.train_ids) >= seq_len and len(data.val_ids) > 0 and len(data.test_ids) > 0
    batches = [b.x for b in data.train_dataloader()]
    assert len(batches) == 2 and all(b.shape == (batch_size, seq_len) for b in batches)
    assert all(int(b.max()) < data.x_dim for b in batches)
    val = torch.cat([b.x.flatten() for b in data.val_dataloader()])
    assert torch.equal(val, data.val_ids)  # evaluation covers every held-out character once
