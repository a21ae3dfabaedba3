"""docs/tour.ipynb runs top to bottom, headless, with no network (the music from ../shared where it lies beside
the repository, else a small file written here), and the committed file carries its pictures."""

import hashlib
import json
from pathlib import Path

import nbformat
import pytest

from tests.data.test_polyphonic import LENGTHS, SHARED, write_mat

pytestmark = pytest.mark.slow  # it trains four small models

TOUR = Path(__file__).resolve().parents[1] / "docs" / "tour.ipynb"


def test_the_committed_tour_carries_its_pictures_and_no_errors():
    notebook = nbformat.read(TOUR, as_version=4)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3  # KL per character, piano rolls, sweep
    assert not [o for o in outputs if o.output_type == "error"]


def test_the_tour_runs_headless_top_to_bottom(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    if (SHARED / "JSB_Chorales.mat").is_file():
        monkeypatch.setenv("VRNN_MUSIC_ROOT", str(SHARED))
    else:
        (tmp_path / "music").mkdir()
        mat = write_mat(tmp_path / "music" / "JSB_Chorales.mat", LENGTHS)
        digest = hashlib.sha256(mat.read_bytes()).hexdigest()
        monkeypatch.setenv("VRNN_MUSIC_ROOT", str(mat.parent))
        monkeypatch.setenv("VRNN_MUSIC_OVERRIDES", json.dumps([f"+data.checksums={{JSB_Chorales.mat:{digest}}}"]))
    notebook = nbformat.read(TOUR, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    pictures = [o for cell in notebook.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pictures) >= 3
    assert len(list((tmp_path / "outputs" / "tour_sweep" / "multiruns").glob("*/summary.csv"))) == 1
