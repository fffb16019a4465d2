"""Run LMQL's documentation examples from a notebook: one notebook per page, built here
(nbformat) and executed top to bottom in a real IPython kernel (nbclient).

The notebook starts with the cells a reader has run before pasting an example:
`%load_ext lmql_nb` and `import lmql_nb as lmql`. One more setup cell swaps the models
the examples name, with the model-swapping shim of LMQL's own suite
(tests/lmql_suite/lmql_shim.py, which also makes an example's `import lmql` give
lmql_nb): every id in `DOCS_SWAPS`, and the default model of a program without `from`,
is a tiny local Llama (`build_docs_model`: the tests' tiny Llama, whose end-of-text is
made likely, so that an unconstrained hole ends within a few tokens, as a real model's
answer does, instead of running to the end of the context). The examples' point is
what the program does (prompt statements, control flow, constraints, decoders, nested
queries, decorators, tools), not the text of one model, which the checks never compare.
Nothing reaches a network.

Then each block of the page that blocks.json records as run (or as failing, or as a
fragment that must still fail) is one cell, in page order: an `lmql` block as a `%%lmql`
cell, a `python` block as it is (see blocks.py). A block's recorded `check` (Python over
the notebook's variables: what the page shows or the example's constraint) is a cell of
its own right after it; its recorded `stdout` (a regular expression) must match a line
the block printed, where the page shows printed output.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any, Optional

from blocks import Block, page_blocks, PAGES

HERE = Path(__file__).parent
SUITE = HERE.parent / "lmql_suite"
sys.path.insert(0, str(HERE.parent / "notebook"))  # nb_helpers: a cell's error and stdout
RECORD = HERE / "blocks.json"

#: model ids the documentation's examples name -> what runs them here (see lmql_shim;
#: "tiny-llama" is the model `build_docs_model` saves)
DOCS_SWAPS = {
    "openai/text-ada-001": "tiny-llama",      # OpenAI completion models (no network here)
    "openai/text-davinci-003": "tiny-llama",
    "chatgpt": "tiny-llama",                  # OpenAI's chat model
    "gpt2": "tiny-llama",                     # GPT-2 from the hub (no hub here)
    "local:gpt2": "tiny-llama",
    "gpt2-xl": "tiny-llama",
}
#: the logit the docs model adds to end-of-text (through a constant embedding feature):
#: large enough that greedy decoding ends a hole within a few tokens
EOS_BOOST = 60.0

#: the chat user's messages, for chat examples run unattended (`%%lmql --inputs`)
CHAT_INPUTS = ["Hi! What can LMQL do?"]

STATUSES = ("runs", "fails", "set aside")
#: why a block is not run (the reason's first word, before ":")
REASONS = {
    "not a program": "text shown as code: prompt output, grammar, console output or "
                     "shell commands",
    "fragment": "part of a program (a clause, a signature, a sketch with `...`), not a "
                "program on its own; run, and must still fail",
    "network": "needs a network service (OpenAI, a model server, a model hub)",
}


def build_docs_model(folder: Path) -> Path:
    """Save the examples' model to `folder`: the tests' tiny chat model (a tiny Llama with
    ChatML's template and turn tokens, tests/chat_models.py, for the chat examples' role
    tags), with a context of 4096 positions and its end-of-text likely: every token's
    embedding gets a constant feature that only end-of-text's output row reads
    (`EOS_BOOST`)."""
    import torch
    from transformers import AutoModelForCausalLM

    sys.path.insert(0, str(HERE.parent))
    from chat_models import build_chat_model

    build_chat_model(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    eos = model.config.eos_token_id
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 3.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[eos, 0] = EOS_BOOST
    model.config.max_position_embeddings = 4096
    model.save_pretrained(folder)
    return folder


def setup_cells(model_path: Path) -> list[str]:
    """The cells before the page's blocks (`model_path`: `build_docs_model`'s folder)."""
    return [
        "%load_ext lmql_nb",
        "import lmql_nb as lmql",
        "\n".join([
            "import os, sys",
            f"sys.path.insert(0, {str(SUITE)!r})",
            "import lmql_shim",
            f"_tiny = lmql.model({'local:' + str(model_path)!r})",
            "_tiny.generate_sync('x', max_tokens=1)  # loads it now",
            f"lmql_shim.install(lmql_shim.Models(None, None, _tiny), {DOCS_SWAPS!r})",
            "lmql.set_default_model(_tiny)",
            f"chat_inputs = {CHAT_INPUTS!r}",
        ]),
    ]


def load_record() -> list[dict[str, Any]]:
    """blocks.json: one entry per block, in page order."""
    return json.loads(RECORD.read_text())


def executed(entry: dict[str, Any]) -> bool:
    """Whether the harness runs the block: runs, fails, or a fragment (must still fail)."""
    return entry["status"] != "set aside" or entry["reason"].startswith("fragment")


def cell_for(block: Block, entry: dict[str, Any]) -> str:
    """The block as its cell: `%%lmql` flags from the entry's `flags`; `"as": "lmql"` for
    a block that is an LMQL program the page labels otherwise (`python` with the site's
    LMQL `name::` line, or no language at all, as the language reference's examples)."""
    if entry.get("as") == "lmql":
        block = dataclasses.replace(block, kind="lmql")
    source = block.cell_source()
    if entry.get("flags") and source.startswith("%%lmql"):
        source = f"%%lmql {entry['flags']}" + source[len("%%lmql"):]
    return source


def outcome(cell: Any) -> str:
    """"runs", or "error: <name>: <first line of the message>" (nb_helpers' `error`)."""
    from nb_helpers import error

    failure = error(cell)
    if failure is None:
        return "runs"
    name, message = failure
    return f"error: {name}: {(message.strip().splitlines() or [''])[0]}"


def run_page(page: str, entries: dict[str, dict[str, Any]], cwd: Path, model_path: Path,
             timeout: int = 240) -> dict[str, dict[str, str]]:
    """Run page `page`'s executed blocks in a fresh kernel; per block key, the block's
    `outcome` and, where it has a check, the check's (`{"block": ..., "check": ...}`)."""
    import nbformat
    from nbclient import NotebookClient
    from nb_helpers import stdout as printed

    cells = setup_cells(model_path)
    setup = len(cells)
    where: dict[str, tuple[int, Optional[int]]] = {}
    for block in page_blocks(PAGES / page):
        entry = entries[block.key]
        if not executed(entry):
            continue
        cells.append(cell_for(block, entry))
        check = None
        if entry.get("check"):
            cells.append(entry["check"])
            check = len(cells) - 1
        where[block.key] = (len(cells) - 1 - (check is not None), check)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    client = NotebookClient(notebook, kernel_name="python3", timeout=timeout,
                            allow_errors=True, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    for number in range(setup):
        assert outcome(notebook.cells[number]) == "runs", (
            f"setup cell {number} failed: {outcome(notebook.cells[number])}")
    results: dict[str, dict[str, str]] = {}
    for key, (cell, check) in where.items():
        results[key] = {"block": outcome(notebook.cells[cell])}
        pattern = entries[key].get("stdout")
        if pattern and results[key]["block"] == "runs" and not re.search(
                pattern, printed(notebook.cells[cell]), re.M):
            results[key]["block"] = (f"error: stdout: no line matches {pattern!r} in "
                                     f"{printed(notebook.cells[cell])[:200]!r}")
        if check is not None:
            results[key]["check"] = outcome(notebook.cells[check])
    return results


def observed(result: dict[str, str]) -> str:
    """A block's result as blocks.json records it: "runs" (the block and its check ran),
    or its error ("error: ...", the check's as "error: check: ...")."""
    if result["block"] != "runs":
        return result["block"]
    if result.get("check", "runs") != "runs":
        return "error: check: " + result["check"][len("error: "):]
    return "runs"


def expected(entry: dict[str, Any]) -> str:
    """What the record says the block gives ("error" for a fragment: any error)."""
    if entry["status"] == "runs":
        return "runs"
    if entry["status"] == "fails":
        return entry["reason"]
    return "error"


def same(recorded: str, now: str) -> bool:
    """Whether a block's result is the recorded one (numbers in messages aside: a token
    count depends on the model's text)."""
    if recorded == "error":
        return now.startswith("error: ")
    return re.sub(r"\d+", "N", recorded) == re.sub(r"\d+", "N", now)


def record_run(entries: dict[str, dict[str, Any]], results: dict[str, dict[str, str]]) -> None:
    """Set each run block's status from `results` (fragments keep theirs)."""
    for key, result in results.items():
        entry = entries[key]
        if entry["status"] == "set aside":
            continue
        now = observed(result)
        entry["status"], entry["reason"] = ("runs", "") if now == "runs" else ("fails", now)
