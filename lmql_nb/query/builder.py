"""`QueryBuilder`: a standalone LMQL query assembled from parts, as LMQL offers it.

    query = (lmql_nb.QueryBuilder()
             .set_decoder("argmax")
             .set_prompt("What is the capital of France? [ANSWER]")
             .set_where("len(TOKENS(ANSWER)) < 10")
             .build())
    query.run_sync()
"""

from __future__ import annotations

from typing import Any, Optional

from ..core.options import QUERY_DECODERS


class QueryExecution:
    """A built query: `await run(**variables)` or `run_sync(**variables)`."""

    def __init__(self, source: str):
        self.query_string = source

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        from .functions import run

        return await run(self.query_string, *args, **kwargs)

    def run_sync(self, *args: Any, **kwargs: Any) -> Any:
        from .functions import run_sync

        return run_sync(self.query_string, *args, **kwargs)


class QueryBuilder:
    """Builds the standalone form `DECODER "PROMPT" from "MODEL" where ... distribution
    X in [...]`; `set_where` may be called several times (the clauses join with `and`)."""

    def __init__(self) -> None:
        self.decoder: Optional[tuple[str, dict[str, Any]]] = None  # None: the program's default
        self.prompt: Optional[str] = None
        self.model: Optional[str] = None
        self.where: Optional[str] = None
        self.distribution: Optional[tuple[str, str]] = None

    def set_decoder(self, decoder: str = "argmax", **kwargs: Any) -> "QueryBuilder":
        if decoder not in QUERY_DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; accepted decoders are: "
                             f"{', '.join(QUERY_DECODERS)}")
        self.decoder = (decoder, kwargs)
        return self

    def set_prompt(self, prompt: str) -> "QueryBuilder":
        if not isinstance(prompt, str):
            raise TypeError(f"the prompt must be a str, got {type(prompt).__name__}")
        if self.prompt is not None:
            raise ValueError("the prompt is set already: give the whole prompt in one "
                             "set_prompt call")
        self.prompt = prompt
        return self

    def set_model(self, model: str) -> "QueryBuilder":
        if not isinstance(model, str):
            raise TypeError(f"the model must be an id str, got {type(model).__name__} "
                            "(pass an LLM object as run(model=...) instead)")
        self.model = model
        return self

    def set_where(self, where: str) -> "QueryBuilder":
        if not isinstance(where, str):
            raise TypeError(f"where must be a str, got {type(where).__name__}")
        self.where = where if self.where is None else f"{_and_operand(self.where)} and " \
                                                      f"{_and_operand(where)}"
        return self

    def set_distribution(self, variable: str, values: str) -> "QueryBuilder":
        """`values` is the source of a Python expression, e.g. '["A", "B"]'."""
        if not isinstance(variable, str) or not variable.isidentifier():
            raise ValueError(f"the distribution variable must be a name, got {variable!r}")
        self.distribution = (variable, values)
        return self

    def build(self) -> QueryExecution:
        """The query; its text (`query_string`) is LMQL's standalone form, as LMQL's own
        builder prints it: `argmax "PROMPT" from "MODEL" where A and B distribution ...`."""
        if self.prompt is None:
            raise ValueError("a query needs a prompt: call set_prompt first")
        parts = []
        if self.decoder is not None:
            name, arguments = self.decoder
            parts.append(name + (f"({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
                                 if arguments else ""))
        parts.append(_quoted(self.prompt))
        if self.model is not None:
            parts.append(f"from {_quoted(self.model)}")
        if self.where is not None:
            parts.append(f"where {self.where}")
        if self.distribution is not None:
            parts.append(f"distribution {self.distribution[0]} in {self.distribution[1]}")
        return QueryExecution(" ".join(parts))


def _quoted(text: str) -> str:
    """`text` as a double-quoted string literal (as LMQL prints prompts and model ids)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _and_operand(where: str) -> str:
    """`where` as an operand of `and`: parenthesised only where `and` would bind into it
    (an `or`, a conditional expression at its top level)."""
    import ast

    try:
        tree = ast.parse(where.strip(), mode="eval").body
    except SyntaxError:
        return f"({where})"  # the compiler reports it, located, when the query runs
    plain = not (isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.Or)) and \
        not isinstance(tree, (ast.IfExp, ast.Lambda, ast.NamedExpr))
    return where.strip() if plain else f"({where.strip()})"
