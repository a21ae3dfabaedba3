import matplotlib.image
import torch

from vrnn_lightning.data.images import image_grid, sequences_to_images, write_png


def test_grid_places_images_row_by_row_with_padding():
    images = torch.stack([torch.full((2, 3), v) for v in (0.0, 0.5, 1.0)])
    grid = image_grid(images, ncol=2, pad=1)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1)
    assert torch.equal(grid[1:3, 1:4], torch.zeros(2, 3)) and torch.equal(grid[1:3, 5:8], torch.full((2, 3), 0.5))
    assert torch.equal(grid[4:6, 1:4], torch.ones(2, 3))


def test_columns_layout_transposes():
    x = torch.arange(6.0).view(1, 2, 3)
    assert torch.equal(sequences_to_images(x, "columns"), x.transpose(1, 2))
    assert sequences_to_images(x, "rows") is x


def test_png_decodes_back_to_the_pixels(tmp_path):
    image = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 0.25]])
    path = write_png(tmp_path / "a.png", image)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    grey = torch.from_numpy(matplotlib.image.imread(path))[..., 0]  # R = G = B
    assert torch.allclose(grey, image, atol=1 / 255)


def test_png_scale_repeats_each_pixel(tmp_path):
    path = write_png(tmp_path / "b.png", torch.tensor([[0.0, 1.0]]), scale=2)
    grey = torch.from_numpy(matplotlib.image.imread(path))[..., 0]
    assert torch.equal(grey, torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 2))
