"""An API key used in a notebook never reaches what the notebook shows or saves."""

from __future__ import annotations

import json

import lmql_nb


def test_the_key_is_in_no_widget_state_html_export_or_result(gpt2_server):
    key = gpt2_server.api_key
    llm = lmql_nb.model("openai/tiny-gpt2", base_url=gpt2_server.base_url, api_key=key)
    generation = llm.generate_sync("Once upon", max_tokens=4, return_details=True, cache=False)
    scored = llm.score_sync("Once upon", [" a", " time"], cache=False)
    for result in (generation, scored):
        widget = lmql_nb.show(result)
        state = json.dumps(widget.get_state(), default=repr)
        assert key not in state
        assert key not in widget.to_html()
        assert key not in repr(result) and key not in str(result)
        bundle = result._repr_mimebundle_()
        assert key not in json.dumps(bundle, default=repr)
    assert key not in repr(llm) and key not in repr(llm.backend)
