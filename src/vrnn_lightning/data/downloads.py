"""Data files fetched from a list of mirrors, checked against a published checksum before use; a partial or
corrupt download never appears under the final name (it is written to a temporary file in the same folder and
renamed only once its checksum matches)."""

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from vrnn_lightning.errors import ConfigError

log = logging.getLogger(__name__)


def checksum(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    name: str, folder: Path, mirrors: list[str], expected: str, algorithm: str = "md5", timeout: float = 30.0
) -> Path:
    """Fetch `name` from the first mirror that serves it with the expected checksum; returns its final path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
            digest = checksum(Path(partial), algorithm)
            if digest != expected:
                failures.append(f"{url} served {algorithm} {digest}, expected {expected}")
                continue
            os.replace(partial, target)
            log.info("downloaded %s from %s", name, mirror)
            return target
        except (urllib.error.URLError, OSError, ValueError) as err:
            failures.append(f"{url}: {getattr(err, 'reason', err)}")
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    raise ConfigError(
        f"could not get {name} ({algorithm} {expected}) from any mirror ({'; '.join(failures)}); "
        f"check the network or data.mirrors, or put the file in {folder} (data.root)"
    )


def verified_file(
    name: str, folder: Path, mirrors: list[str], expected: str, algorithm: str, allow_download: bool
) -> Path:
    """`folder/name`, downloaded first where it is missing and downloads are allowed, and checked either way."""
    path = folder / name
    if not path.exists():
        if not allow_download:
            raise ConfigError(f"{path} is missing and data.download=false; put the file in data.root")
        return download(name, folder, mirrors, expected, algorithm)
    digest = checksum(path, algorithm)
    if digest != expected:
        raise ConfigError(f"{path} has {algorithm} {digest}, expected {expected}; delete it so it is downloaded again")
    return path
