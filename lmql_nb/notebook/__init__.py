"""lmql_nb in Jupyter: `magics/` (the `%%lmql`, `%%lmql_generate` and `%lmql_score`
magics, streaming into the views) and `views/` (one anywidget per kind of result, drawn by
`js/`; `show()` picks the one registered for a result's type).

Nothing here is imported by `import lmql_nb`; `%load_ext lmql_nb` and `lmql_nb.show`
import it on first use. Below `magics/` and `views/`: `kernel.py` (is there a kernel,
updatable displays), `texts.py` (results as plain text), `codec.py` (the views' data
format), `saving.py` (the server extension that saves outputs as static HTML).
"""
