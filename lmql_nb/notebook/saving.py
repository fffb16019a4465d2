"""Saved notebooks keep lmql_nb outputs readable: a Jupyter server pre-save hook.

Every lmql_nb display carries the live widget, its static rendering (text/html) and its
text. A saved widget view can only be drawn again from widget state saved in the
notebook, which JupyterLab and Notebook 7 do not save by default; without it a reopened
notebook shows "Error displaying widget: model not found". So when Jupyter saves a
notebook, this hook drops the widget view from the lmql_nb outputs whose widget state the
notebook does not hold: the file keeps the static rendering and the text, which JupyterLab,
Notebook 7, nbconvert, nbviewer and GitHub all show. Outputs whose state is saved ("Save
Widget State Automatically") keep their live view. The page being edited is not changed:
its views stay live until it is reloaded.

Enabled with lmql_nb's server extension (`jupyter-config/jupyter_server_config.d/`), which
calls `register` here. Light on purpose: no widget or IPython import.
"""

from __future__ import annotations

from typing import Any

#: the output metadata key that marks an lmql_nb display (its value names the view)
METADATA_KEY = "lmql_nb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def static_outputs(notebook: dict) -> int:
    """Drop the widget view of every lmql_nb output of `notebook` (an nbformat dict, changed
    in place) whose widget state it does not hold, keeping the static rendering beside it.
    Returns how many outputs changed."""
    metadata = notebook.get("metadata") or {}
    state = ((metadata.get("widgets") or {}).get(WIDGET_STATE) or {}).get("state") or {}
    changed = 0
    for cell in notebook.get("cells") or []:
        for output in cell.get("outputs") or []:
            data = output.get("data") or {}
            view = data.get(WIDGET_VIEW)
            if (METADATA_KEY not in (output.get("metadata") or {}) or not isinstance(view, dict)
                    or "text/html" not in data or view.get("model_id") in state):
                continue
            del data[WIDGET_VIEW]
            changed += 1
    return changed


def pre_save_hook(model: dict, **kwargs: Any) -> None:
    """A `ContentsManager` pre-save hook applying `static_outputs` to saved notebooks."""
    if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
        static_outputs(model["content"])


def register(serverapp: Any) -> None:
    """Register the pre-save hook with a Jupyter server's contents manager."""
    serverapp.contents_manager.register_pre_save_hook(pre_save_hook)


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "lmql_nb.notebook.saving"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    register(serverapp)
    serverapp.log.info("lmql_nb: notebooks are saved with static lmql_nb outputs")
