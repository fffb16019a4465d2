"""Execute the example notebooks in place and keep them as a reader will open them.

    python scripts/run_notebooks.py [notebooks/x.ipynb ...]   # default: all of notebooks/

Each notebook runs top to bottom in a fresh kernel (nbclient). No widget state is kept;
lmql_nb's outputs are saved with their static rendering and text (as lmql_nb's Jupyter
server extension saves them, see `lmql_nb.notebook.saving`), so GitHub, nbviewer and a
reopened notebook show them. Progress bars are dropped: they describe one run, not the result.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from lmql_nb.notebook.saving import static_outputs

ROOT = Path(__file__).resolve().parents[1]
_BAR = re.compile(r"\d+%\|")


def _progress(output: dict) -> bool:
    """A progress bar (tqdm on stderr, or its widget): it describes one run only."""
    if output.get("output_type") == "stream":
        return output.get("name") == "stderr" and bool(_BAR.search(output.get("text", "")))
    return bool(_BAR.search(output.get("data", {}).get("text/plain", "")))


def run(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=1800, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not _progress(o)]
    static_outputs(notebook)
    nbformat.write(notebook, path)
    print(f"ran {path.relative_to(ROOT)}")


if __name__ == "__main__":
    paths = ([Path(p).resolve() for p in sys.argv[1:]]
             or sorted((ROOT / "notebooks").glob("*.ipynb")))
    for path in paths:
        run(path)
