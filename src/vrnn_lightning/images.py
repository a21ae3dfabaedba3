"""Image grids and PNG files without torchvision or Pillow (neither is a dependency)."""

import struct
import zlib
from pathlib import Path

import torch
from torch import Tensor


def sequences_to_images(x: Tensor, layout: str) -> Tensor:
    """(N, T, D) sequences -> (N, H, W) images: rows are time steps, or columns are."""
    return x if layout == "rows" else x.transpose(1, 2)


def image_grid(images: Tensor, ncol: int, pad: int = 1) -> Tensor:
    """(N, H, W) images in [0, 1] -> one (H', W') grid, `ncol` per row, `pad` pixels of white between them."""
    n, h, w = images.shape
    nrow = -(-n // ncol)
    grid = torch.ones(nrow * (h + pad) + pad, ncol * (w + pad) + pad)
    for i, image in enumerate(images.float().clamp(0, 1)):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = image
    return grid


def write_png(path: str | Path, image: Tensor, scale: int = 1) -> Path:
    """Write an (H, W) image in [0, 1] as an 8-bit greyscale PNG, each pixel a `scale` x `scale` block."""
    image = image.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    height, width = pixels.shape
    raw = b"".join(b"\x00" + bytes(row.tolist()) for row in pixels)  # filter type 0 per scanline

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path = Path(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    return path
