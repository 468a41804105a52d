"""examples/recording.ipynb runs headless, top to bottom: records a sample from the local
server, loads it into pandas, plots it, replays it. Skipped without the notebook tools
or pandas (the ``dev`` extra installs them, so CI runs it)."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")
pytest.importorskip("pandas")
pytest.importorskip("aiohttp")

from tests.test_notebook import kernel_spec, outputs_of  # noqa: E402, F401 (a fixture)

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "recording.ipynb"


def test_the_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert not outputs_of(notebook)


@pytest.mark.timeout(120)
def test_the_notebook_records_plots_and_replays(kernel_spec: str, tmp_path: Path) -> None:  # noqa: F811
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name=kernel_spec, timeout=60,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    assert any("image/png" in output.get("data", {}) for output in outputs_of(notebook, "display_data"))
    text = "".join(output.get("text", "") for output in outputs_of(notebook, "stream"))
    assert "identical: True" in text, text
