"""What both widgets share: the bundle location, a stable text repr, `to_html()`."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import traitlets

STATIC = Path(__file__).resolve().parent.parent.parent / "static"

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
<script type="application/vnd.lmql-nb.state+json">{state}</script>
<script>{script}</script>
</body>
</html>
"""


def _script_safe_json(value: Any) -> str:
    """JSON that cannot end the <script> element it sits in, whatever text it carries."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class LmqlWidget(anywidget.AnyWidget):
    """Base of lmql_nb's widgets: `data` is the packed columns (see `codec`)."""

    _css = STATIC / "widgets.css"
    data = traitlets.Bytes(b"").tag(sync=True)

    #: the view's name in standalone.js and the traits (besides data) a page needs
    _view: ClassVar[str] = ""
    _page_traits: ClassVar[tuple[str, ...]] = ()

    def mimebundle(self, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """This widget's display (data, metadata), with `text` as its text/plain."""
        data, metadata = self._repr_mimebundle_()
        return {**data, "text/plain": text}, metadata

    def to_html(self, title: str = "lmql_nb") -> str:
        """A standalone HTML page that draws this widget without a kernel (no network)."""
        state = {
            "view": self._view,
            "state": {name: getattr(self, name) for name in self._page_traits},
            "data": base64.b64encode(self.data).decode("ascii"),
        }
        return _PAGE.format(title=html.escape(title), css=(STATIC / "widgets.css").read_text(),
                            state=_script_safe_json(state),
                            script=(STATIC / "standalone.js").read_text())

    def save_html(self, path: str | Path, title: str = "lmql_nb") -> Path:
        """Write `to_html()` to `path` and return it."""
        path = Path(path)
        path.write_text(self.to_html(title), encoding="utf-8")
        return path
