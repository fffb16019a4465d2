"""lmql_nb in Jupyter: the `%%lmql`, `%%lmql_generate` and `%lmql_score` magics and the
widgets.

Nothing here is imported by `import lmql_nb`; `%load_ext lmql_nb` and `lmql_nb.show`
import it on first use.
"""
