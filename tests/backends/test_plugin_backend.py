"""A backend from another package: registered through the `lmql_nb.backends` entry point
group, found by `lmql_nb.model("toy:...")`, its options checked from its declaration.

The package is written here into a temporary folder with a `.dist-info` beside it, as
pip would install it; nothing in lmql_nb names it.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

import lmql_nb
from lmql_nb.backends import registry

TOY_PACKAGE = '''
"""A backend that answers with a fixed reply: the smallest complete backend."""

import dataclasses

import lmql_nb
from lmql_nb.backends.base import Backend
from lmql_nb.core.results import Generation, TokenInfo, ValueScores
from lmql_nb.core.validation import Options, option


@dataclasses.dataclass(frozen=True)
class ToyOptions(Options):
    reply: str = option("hello", "what the toy answers", "str")
    repeat: int = option(1, "how often it says it", "int", minimum=1, maximum=3)


class ToyBackend(Backend):
    kind = "toy"

    def __init__(self, model_id, name, options):
        self.name, self.options = name, options

    def load(self):
        pass

    def get_tokenizer(self):
        raise NotImplementedError("the toy has no tokenizer")

    @property
    def context_length(self):
        return None

    async def generate(self, prompt, options, on_token=None):
        text = self.options.reply * self.options.repeat
        token = TokenInfo(-1, text, 0.0)
        if on_token is not None:
            on_token(0, token)
        return [Generation(text, (token,), "stop", prompt)]

    async def score(self, prompt, values, options):
        return [ValueScores([-1], [value], [-float(len(value))]) for value in values]


def register():
    lmql_nb.register_backend("toy:", ToyBackend, options=ToyOptions,
                             forms=[("toy:<name>", "a toy that answers with a fixed reply")])
'''


@pytest.fixture
def toy_installed(tmp_path, monkeypatch):
    (tmp_path / "lmql_nb_toy").mkdir()
    (tmp_path / "lmql_nb_toy" / "__init__.py").write_text(TOY_PACKAGE)
    info = tmp_path / "lmql_nb_toy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lmql_nb_toy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [lmql_nb.backends]
        toy = lmql_nb_toy:register
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    # uninstalled again: the next test installs it afresh
    registry.unregister_backend("toy:")
    registry._plugins_seen.discard(("toy", "lmql_nb_toy:register"))
    sys.modules.pop("lmql_nb_toy", None)


def test_a_backend_from_an_installed_package_serves_its_ids(toy_installed):
    llm = lmql_nb.model("toy:x", reply="hi ", repeat=2)
    assert llm.generate_sync("Say something", cache=False) == "hi hi "
    assert list(llm.score_sync("p", ["ab", "abc"], cache=False).scores()) == [-2.0, -3.0]
    assert "'toy:<name>' (a toy that answers with a fixed reply)" in registry.accepted_forms()


def test_its_options_are_checked_from_its_declaration(toy_installed):
    lmql_nb.model("toy:x")  # registers the toy
    with pytest.raises(ValueError, match=r"repeat must be an int in \[1, 3\], got 4"):
        lmql_nb.model("toy:x", repeat=4)
    with pytest.raises(TypeError, match="reply must be a non-empty str, got int 5"):
        lmql_nb.model("toy:y", reply=5)
    with pytest.raises(TypeError, match="model 'toy:x' got unknown option 'colour'; "
                                        "accepted options are: repeat, reply"):
        lmql_nb.model("toy:x", colour="red")


def test_unknown_prefixes_list_the_registered_forms():
    with pytest.raises(ValueError, match="unknown model id 'nope:x'; accepted forms: "
                                         "'local:gemma-3-270m'.*'openai/<model>'"):
        lmql_nb.model("nope:x")


def test_a_prefix_is_registered_once_unless_replaced():
    def factory(model_id, name, options):
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="'local:' is registered already"):
        lmql_nb.register_backend("local:", factory)
    with pytest.raises(ValueError, match="a name followed by ':' or '/'"):
        lmql_nb.register_backend("toy", factory)
