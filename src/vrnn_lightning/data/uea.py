"""`data=uea data.name=...`: the multivariate sets of the UEA / UCR time-series archive, in its `.ts` format.

A `.ts` file: `#` comment lines, `@` header lines (`@problemName`, `@dimensions`, `@equalLength`,
`@classLabel true 1 2 ...`, ...), then `@data` and one line per series: the dims separated by `:`, the values
of a dim by `,`, the class label last where `@classLabel true`. Series may differ in length; the dims of one
series may not. Labels are kept (`labels`) and not modelled. The files are `<name>_TRAIN.ts` and
`<name>_TEST.ts` in `data.root` (or `data.root/<name>/`); where missing, they are downloaded from `data.url`
(`<url>/<name>_TRAIN.ts`) where one is given, checked against the sha256 the project knows for that file.
Validation is a seeded `data.val_fraction` of the training series.
"""

import logging
from pathlib import Path
from typing import Any

import numpy as np

from vrnn_lightning.data.downloads import checksum, download
from vrnn_lightning.data.real_valued import RealValuedDataModule
from vrnn_lightning.errors import ConfigError

log = logging.getLogger(__name__)

KNOWN_SHA256 = {  # file -> sha256, of the files as the UEA archive ships them
    "JapaneseVowels_TRAIN.ts": "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
    "JapaneseVowels_TEST.ts": "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
}


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """The series of a `.ts` file as (T_i, D) float arrays, and their class labels ("" without labels)."""
    header: dict[str, str] = {}
    series, labels = [], []
    in_data = labelled = False
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{path}, line {number}"
            if not in_data:
                if not line.startswith("@"):
                    raise ConfigError(f"{where}: {line[:40]!r} is neither a header (@...) nor after @data")
                key, _, value = line[1:].partition(" ")
                if key.lower() == "data":
                    in_data = True
                    labelled = header.get("classlabel", "false").split()[0].lower() == "true"
                else:
                    header[key.lower()] = value.strip()
                continue
            fields = line.split(":")
            if labelled:
                labels.append(fields.pop().strip())
            else:
                labels.append("")
            try:
                dims = [[float(v) for v in field.split(",")] for field in fields]
            except ValueError as err:
                raise ConfigError(f"{where}: {err}; values are numbers separated by ',' and dims by ':'") from None
            expected = header.get("dimensions")
            if expected is not None and expected.isdigit() and len(dims) != int(expected):
                raise ConfigError(f"{where}: {len(dims)} dims, but the header says @dimensions {expected}")
            if len({len(d) for d in dims}) != 1:
                raise ConfigError(
                    f"{where}: its dims have {sorted({len(d) for d in dims})} values; one series, one length"
                )
            series.append(np.array(dims, dtype=np.float64).T)  # (T, D)
    if not in_data:
        raise ConfigError(f"{path} has no @data line; is it a .ts file of the UEA archive?")
    return series, labels


class UEADataModule(RealValuedDataModule):
    """`data=uea data.name=JapaneseVowels`: a set of the UEA archive; its test split is the archive's."""

    def __init__(
        self,
        name: str = "JapaneseVowels",
        root: str = "data/uea",
        url: str | None = None,
        download: bool = True,
        checksums: dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        self.check_settings({"name": name, "download": download, **options})
        self.name, self.root, self.url, self.allow_download = name, Path(root).expanduser(), url, download
        self.checksums = {**KNOWN_SHA256, **(checksums or {})}
        self.source = f"UEA {name}"
        self.labels: dict[str, list[str]] = {}
        super().__init__(**options)

    def file(self, split: str) -> Path:
        name = f"{self.name}_{split.upper()}.ts"
        for folder in (self.root / self.name, self.root):
            if (folder / name).exists():
                self.check(folder / name)
                return folder / name
        if not (self.allow_download and self.url):
            raise ConfigError(
                f"{name} is in neither {self.root / self.name} nor {self.root}; put it there (data.root=...) or "
                "give data.url=<a folder that serves it>"
            )
        expected = self.checksums.get(name)
        if expected is None:
            raise ConfigError(
                f"the project knows no sha256 for {name}; download it yourself into {self.root} "
                f"or add data.checksums={{{name}: <sha256>}}"
            )
        return download(name, self.root / self.name, [self.url], expected, "sha256")

    def check(self, path: Path) -> None:
        expected = self.checksums.get(path.name)
        if expected is not None and checksum(path, "sha256") != expected:
            raise ConfigError(f"{path} is not the archive's file (sha256 differs); delete it or fetch it again")

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        name = settings.get("name", "JapaneseVowels")
        if not isinstance(name, str) or not name or name.lower().endswith(".ts") or "/" in name:
            raise ConfigError(
                f"data.name={name!r} is a set's name (e.g. JapaneseVowels), not a file; its folder is data.root"
            )
        if settings.get("test_fraction", 0.1) != 0.1:
            raise ConfigError("data.test_fraction does not apply to data=uea: its test split is the archive's")
        super().check_settings(settings)

    def read_splits(self) -> dict[str, list[np.ndarray]]:
        splits = {}
        for split in ("train", "test"):
            splits[split], self.labels[split] = read_ts(self.file(split))
        return splits

    @property
    def metadata(self) -> dict[str, Any]:
        return {**super().metadata, "set": self.name}
