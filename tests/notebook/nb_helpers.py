"""Helpers for the notebook-layer tests: run cells in a real IPython kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def execute_cells(cells: Sequence[str], cwd: Path, timeout: int = 180):
    """Run `cells` top to bottom in a fresh python3 kernel (errors do not stop the run);
    return the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = NotebookClient(notebook, kernel_name="python3", timeout=timeout, allow_errors=True,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return notebook


def stdout(cell) -> str:
    """Everything a cell printed to stdout."""
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.name == "stdout")


def error(cell):
    """A cell's error (ename, evalue), or None. IPython reports a UsageError as a
    "UsageError: ..." line on stderr rather than as an error output."""
    for output in cell.outputs:
        if output.output_type == "error":
            return output.ename, output.evalue
        if output.output_type == "stream" and output.text.startswith("UsageError: "):
            return "UsageError", output.text[len("UsageError: "):]
    return None


def display_data(cell) -> list[dict]:
    """The data of a cell's display_data / execute_result outputs."""
    return [o.data for o in cell.outputs if o.output_type in ("display_data", "execute_result")]
