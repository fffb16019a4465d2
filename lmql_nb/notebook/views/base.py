"""What every view shares: the registry of views, the declared data columns, the display
(live widget + static HTML + text) and `to_html()`.

A view is one JS file, `js/src/views/<name>.js` (built into `lmql_nb/static/<name>.js`;
see the comment at the top of `js/src/view.js`), and one subclass of `LmqlWidget` here
with `view = "<name>"`, `columns` (the one declaration of the data it sends) and
`static_html()`. Subclassing registers it in `VIEWS`; nothing else names it.

Every display carries, beside the live widget, the view's static rendering as
`text/html` (styled HTML, the numbers in `title`s, no script): what nbconvert, nbviewer,
GitHub and any front end without the widget show, and what lmql_nb's Jupyter server
extension keeps when a notebook is saved (see `..saving`), so that a reopened notebook
never shows "model not found". `text/plain` is the view's text (the generated text, the
scores table).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, ClassVar, Mapping

import anywidget
import traitlets

from .. import codec
from ..saving import METADATA_KEY

STATIC = Path(__file__).resolve().parent.parent.parent / "static"

#: every view by name (filled by subclassing `LmqlWidget`)
VIEWS: dict[str, type["LmqlWidget"]] = {}

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ margin: 24px; background: #ffffff; color: #1f1f1f; }}
@media (prefers-color-scheme: dark) {{
  body {{ background: #111111; color: #e0e0e0; }}
  .lmnb {{
    --jp-content-font-color1: #e0e0e0; --jp-content-font-color2: #bdbdbd;
    --jp-content-font-color3: #8a8a8a; --jp-layout-color0: #111111;
    --jp-layout-color1: #1e1e1e; --jp-layout-color2: #2c2c2c;
    --jp-border-color1: #555555; --jp-border-color2: #333333;
  }}
}}
{css}
</style>
</head>
<body>
<div class="lmnb-page">
{static}
<script type="application/vnd.lmql-nb.state+json">{state}</script>
<script type="application/vnd.lmql-nb.view+javascript">{esm}</script>
</div>
<script>{script}</script>
</body>
</html>
"""


def _script_safe_json(value: Any) -> str:
    """JSON that cannot end the <script> element it sits in, whatever text it carries."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class LmqlWidget(anywidget.AnyWidget):
    """Base of lmql_nb's views: `data` is the packed `columns` (see `codec`)."""

    _css = STATIC / "widgets.css"
    data = traitlets.Bytes(b"").tag(sync=True)

    #: the view's name: its bundle is lmql_nb/static/<view>.js
    view: ClassVar[str] = ""
    #: the data columns the view reads, name -> dtype ("f8", "i4", "u1" or "str")
    columns: ClassVar[Mapping[str, str]] = {}
    #: the traits (besides data) that to_html()'s page needs
    _page_traits: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        view = cls.__dict__.get("view", "")
        if view:
            if "_esm" not in cls.__dict__:  # before anywidget reads it
                cls._esm = STATIC / f"{view}.js"
            known = VIEWS.get(view)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise ValueError(f"two lmql_nb views are named {view!r}: "
                                 f"{known.__qualname__} and {cls.__qualname__}")
            VIEWS[view] = cls
        super().__init_subclass__(**kwargs)

    def pack(self, columns: Mapping[str, codec.Column]) -> bytes:
        """`columns` packed for the front end, checked against the declared `columns`."""
        return codec.pack(columns, self.columns)

    def static_html(self) -> str:
        """The view drawn without JavaScript: styled HTML, numbers in `title`s."""
        raise NotImplementedError(f"{type(self).__name__} has no static rendering")

    def text(self) -> str:
        """What text-only front ends show (text/plain)."""
        return repr(self)

    def mimebundle(self, text: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """This view's display (data, metadata): the live widget, its static rendering
        (text/html) and `text` (default: `self.text()`) as text/plain."""
        data, metadata = super()._repr_mimebundle_() or ({}, {})
        data = {**data, "text/html": self.static_html(),
                "text/plain": self.text() if text is None else text}
        return data, {**(metadata or {}), METADATA_KEY: {"view": self.view}}

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.mimebundle()

    def to_html(self, title: str = "lmql_nb") -> str:
        """A standalone HTML page that draws this view without a kernel (no network);
        without JavaScript it shows the static rendering."""
        state = {
            "view": self.view,
            "state": {name: getattr(self, name) for name in self._page_traits},
            "data": base64.b64encode(self.data).decode("ascii"),
        }
        esm = self._esm.read_text() if isinstance(self._esm, Path) else str(self._esm)
        return _PAGE.format(title=html.escape(title), css=(STATIC / "widgets.css").read_text(),
                            static=self.static_html(), state=_script_safe_json(state),
                            esm=esm, script=(STATIC / "standalone.js").read_text())

    def save_html(self, path: str | Path, title: str = "lmql_nb") -> Path:
        """Write `to_html()` to `path` and return it."""
        path = Path(path)
        path.write_text(self.to_html(title), encoding="utf-8")
        return path
