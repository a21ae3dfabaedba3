import gzip
import hashlib
import http.server
import shutil
import struct
import threading
from pathlib import Path

import pytest
import torch

from vrnn_lightning.data import MNISTDataModule
from vrnn_lightning.data.downloads import download
from vrnn_lightning.data.mnist import MD5, ShuffledImages, read_idx
from vrnn_lightning.errors import ConfigError

FIXTURE = Path(__file__).parent / "fixtures" / "mnist"
IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
FIXTURE_MD5 = {name: hashlib.md5((FIXTURE / name).read_bytes()).hexdigest() for name in (IMAGES, LABELS)}


def fixture_module(**kwargs) -> MNISTDataModule:
    return MNISTDataModule(root=str(FIXTURE), download=False, checksums=FIXTURE_MD5, **kwargs)


def test_read_idx_parses_images_and_labels():
    images, labels = read_idx(FIXTURE / IMAGES), read_idx(FIXTURE / LABELS)
    assert images.shape == (300, 28, 28) and images.dtype == torch.uint8 and images.max() == 255
    assert labels.shape == (300,) and labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first t10k digits


def write_gz(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload))
    return path


def test_wrong_magic_number_is_named(tmp_path):
    path = write_gz(tmp_path / "bad.gz", struct.pack(">IIII", 0x0808, 1, 28, 28) + bytes(784))
    with pytest.raises(ConfigError, match="magic number 00000808"):
        read_idx(path)


def test_truncated_body_and_truncated_gzip_are_named(tmp_path):
    short = write_gz(tmp_path / "short.gz", struct.pack(">IIII", 0x0803, 2, 28, 28) + bytes(784))
    with pytest.raises(ConfigError, match="holds 784 data bytes, its header promises 1568"):
        read_idx(short)
    cut = tmp_path / "cut.gz"
    cut.write_bytes((FIXTURE / IMAGES).read_bytes()[:1000])
    with pytest.raises(ConfigError, match="not a complete gzip file"):
        read_idx(cut)


def test_t10k_only_folder_splits_80_10_10_and_warns(caplog):
    dm = fixture_module()
    dm.setup()
    assert dm.split == "t10k_only"
    assert [len(dm.images[k]) for k in ("train", "val", "test")] == [240, 30, 30]
    assert "NOT comparable" in caplog.text


def test_validation_is_binarised_once_and_training_afresh():
    dm = fixture_module(batch_size=240)
    dm.setup()
    val = dm.images["val"]
    assert set(val.unique().tolist()) <= {0.0, 1.0}
    again = fixture_module()
    again.setup()
    assert torch.equal(val, again.images["val"])
    batches = ShuffledImages(dm.images["train"], 240, seed=0, rank=0, world_size=1, dynamic=True)
    first, second = next(iter(batches)).x, next(iter(batches)).x
    assert set(first.unique().tolist()) == {0.0, 1.0} and not torch.equal(first.sum(0), second.sum(0))


def test_intensities_when_not_binarised_and_columns_layout():
    rows, cols = fixture_module(binarize=False), fixture_module(binarize=False, layout="columns")
    rows.setup(), cols.setup()
    assert rows.images["val"].max() == 1.0 and 0 < rows.images["val"].mean() < 0.5
    assert torch.equal(cols.images["test"], rows.images["test"].transpose(1, 2))


def test_ranks_train_on_disjoint_images():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1).expand(10, 2, 2)
    seen = [torch.cat([b.x for b in ShuffledImages(images, 3, 0, rank, 2, dynamic=False)])[:, 0, 0] for rank in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 5
    assert sorted((torch.cat(seen) * 255).round().int().tolist()) == list(range(10))


@pytest.fixture
def http_mirror(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/served; yields (url, folder)."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", served
    server.shutdown()
    server.server_close()


def dead_mirror() -> str:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    return f"http://127.0.0.1:{port}/"


def test_download_accepts_a_good_file(http_mirror, tmp_path):
    url, served = http_mirror
    shutil.copy(FIXTURE / IMAGES, served / IMAGES)
    path = download(IMAGES, tmp_path / "data", [url], FIXTURE_MD5[IMAGES])
    assert path == tmp_path / "data" / IMAGES and read_idx(path).shape == (300, 28, 28)


def test_corrupt_download_fails_its_md5_and_is_deleted(http_mirror, tmp_path):
    url, served = http_mirror
    (served / IMAGES).write_bytes(b"not mnist at all")
    with pytest.raises(ConfigError) as err:
        download(IMAGES, tmp_path / "data", [url], MD5[IMAGES])
    message = str(err.value)
    assert IMAGES in message and MD5[IMAGES] in message and "put the file in" in message and "\n" not in message
    assert list((tmp_path / "data").iterdir()) == []  # neither the final name nor a partial file is left


def test_a_dead_mirror_falls_through_to_the_next(http_mirror, tmp_path):
    url, served = http_mirror
    shutil.copy(FIXTURE / LABELS, served / LABELS)
    path = download(LABELS, tmp_path / "data", [dead_mirror(), url], FIXTURE_MD5[LABELS])
    assert read_idx(path).shape == (300,)


def test_datamodule_downloads_through_its_mirrors(http_mirror, tmp_path):
    url, served = http_mirror
    for name in (IMAGES, LABELS):
        shutil.copy(FIXTURE / name, served / name)
    dm = MNISTDataModule(root=str(tmp_path / "data"), mirrors=[url], checksums=FIXTURE_MD5)
    dm.prepare_data()
    dm.setup()
    assert dm.split == "t10k_only" and sorted(p.name for p in (tmp_path / "data").iterdir()) == [IMAGES, LABELS]


def test_missing_files_without_download_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="is missing and data.download=false; put the file in data.root"):
        MNISTDataModule(root=str(tmp_path), download=False).setup()


def test_a_local_file_with_the_wrong_md5_is_refused(tmp_path):
    shutil.copy(FIXTURE / IMAGES, tmp_path / IMAGES)
    with pytest.raises(ConfigError, match=f"expected {MD5[IMAGES]}; delete it"):
        MNISTDataModule(root=str(tmp_path), download=False).setup()
