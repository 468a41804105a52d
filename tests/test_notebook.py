"""examples/live_chart.ipynb runs headless, top to bottom, and draws its chart.

The notebook runs in a real Jupyter kernel started from this interpreter, so it sees the
same installed hyperliquid_ws. Skipped where the notebook tools are missing; the ``dev``
extra installs them, so CI runs it.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")
pytest.importorskip("aiohttp")  # the notebook starts the local server by default

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "live_chart.ipynb"
KERNEL_NAME = "hlws-test-python"  # our own kernel spec: no other "python3" install can shadow it
CELL_TIMEOUT = 30  # seconds per cell; the whole notebook takes about 12 s


@pytest.fixture
def kernel_spec(tmp_path, monkeypatch):
    """A kernel spec that runs ipykernel on ``sys.executable``, found first via JUPYTER_PATH."""
    spec_dir = tmp_path / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (hyperliquid_ws tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    return KERNEL_NAME


def outputs_of(notebook, output_type=None):
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.get("outputs", []) if output_type in (None, output.output_type)]


def notebook_client(notebook, kernel_name):
    """A client that runs ``notebook`` in our kernel, from the examples folder."""
    return nbclient.NotebookClient(notebook, kernel_name=kernel_name, timeout=CELL_TIMEOUT,
                                   resources={"metadata": {"path": str(NOTEBOOK.parent)}})


def test_the_committed_notebook_is_valid_and_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    assert not outputs_of(notebook), "commit the notebook with its outputs cleared"
    assert any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells)


@pytest.mark.timeout(120)
def test_the_notebook_runs_headless_and_draws_a_live_chart(kernel_spec):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = notebook_client(notebook, kernel_spec)
    client.execute()  # raises CellExecutionError, with the traceback, if any cell fails

    assert not outputs_of(notebook, "error")
    images = [output for output in outputs_of(notebook) if "image/png" in output.get("data", {})]
    # One chart, redrawn in place: its display updates replaced the output rather than adding more.
    assert len(images) == 1, f"expected one chart updated in place, got {len(images)} images"
    assert base64.b64decode(images[0].data["image/png"]).startswith(b"\x89PNG")

    printed = "".join(output.text for output in outputs_of(notebook, "stream") if output.name == "stdout")
    found = re.search(r"collected (\d+) mids and (\d+) trades", printed)
    assert found, printed
    mids, trades = map(int, found.groups())
    assert mids > 0 and trades > 0, "the chart was drawn with no data"


@pytest.mark.timeout(120)
def test_running_the_cells_again_leaves_only_the_new_server_and_client(kernel_spec):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = notebook_client(notebook, kernel_spec)
    code = [(index, cell) for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    serve = next(index for index, cell in code if "LocalServer(" in cell.source)
    subscribe = next(index for index, cell in code if "HyperliquidWS(" in cell.source)
    probe = nbformat.v4.new_code_cell(
        "import threading\n"
        "print('client', ws.name, 'threads', *sorted(t.name for t in threading.enumerate() "
        "if t.name.startswith('hlws-') and not t.name.startswith('hlws-local-server')))\n"
        "print('servers', sum(t.name.startswith('hlws-local-server') for t in threading.enumerate()))\n")
    notebook.cells.append(probe)
    with client.setup_kernel():
        for index, cell in code:
            if index <= subscribe:
                client.execute_cell(cell, index)
        for again in (serve, subscribe):  # the user runs them again
            client.execute_cell(notebook.cells[again], again)
        client.execute_cell(probe, len(notebook.cells) - 1)
        client.execute_cell(code[-1][1], code[-1][0])  # the Stop cell
    printed = "".join(output.get("text", "") for output in probe.outputs)
    found = re.fullmatch(r"client (\S+) threads (.*)\nservers 1\n", printed)
    assert found, printed
    name, threads = found.group(1), found.group(2).split()
    assert threads and all(t.startswith((f"{name}-", f"{name}.")) for t in threads), printed
