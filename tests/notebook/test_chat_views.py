"""Chat in the views: a reply's end-of-turn token is drawn muted in the heatmap (and
still scored), a chat program's turns are labelled with their roles in the trace view;
both in the live data and in the static rendering saved notebooks keep."""

from __future__ import annotations

import lmql_nb
from lmql_nb.lib.chat import message  # noqa: F401 (the program's @message)
from lmql_nb.notebook.codec import unpack
from lmql_nb.notebook.views import ScoringHeatmap
from lmql_nb.notebook.views.trace_view import HOLE, ROLE, TraceView

from chat_models import MESSAGES


def test_the_heatmap_mutes_the_end_of_turn_and_still_counts_it(chat_path):
    result = lmql_nb.model(f"local:{chat_path}").score_sync(MESSAGES, [" Paris", " Rome"],
                                                            cache=False)
    view = ScoringHeatmap(result)
    columns = unpack(view.data)
    marks = list(columns["token_control"])
    tokens = list(columns["token"])
    assert [tokens[i] for i, mark in enumerate(marks) if mark] == ["<|im_end|>"] * 2
    assert result.scores()[0] == sum(result.token_scores[0])  # the end of turn counts
    html = view.static_html()
    assert html.count("the chat template&#x27;s end of turn") == 2 or \
        html.count("the chat template's end of turn") == 2
    assert "opacity: 0.5; font-style: italic" in html


def test_the_trace_view_labels_each_turn(chat_path):
    program = lmql_nb.query('''argmax
    "{:system} You answer in one word."
    "{:user} The capital of France is"
    "{:assistant} [ANSWER]" where len(TOKENS(ANSWER)) < 3
''', model=lmql_nb.model(f"local:{chat_path}"), is_async=False)
    result = program(cache=False)
    view = TraceView(result)
    columns = unpack(view.data)
    roles = [name for kind, name in zip(columns["seg_kind"], columns["seg_name"])
             if kind == ROLE]
    assert roles == ["system", "user", "assistant"]
    html = view.static_html()
    assert all('lmnb-trace-role" style' in html and f">{role}</span>" in html
               for role in roles)


def test_the_trace_view_tags_the_holes_the_chat_user_sees(chat_path):
    """`[@message ANSWER]` is tagged as what the chat's user sees; REASONING, without it,
    is the program's internal reasoning and carries no tag (live data and static)."""
    program = lmql_nb.query('''argmax
    "{:user} The capital of France is"
    "{:assistant} Reasoning:[REASONING]" where len(TOKENS(REASONING)) < 3
    "{:assistant} Answer: [@message ANSWER]" where len(TOKENS(ANSWER)) < 3
''', model=lmql_nb.model(f"local:{chat_path}"), is_async=False)
    view = TraceView(program(cache=False))
    columns = unpack(view.data)
    holes = {name: bool(flag) for kind, name, flag in zip(
        columns["seg_kind"], columns["seg_name"], columns["seg_message"]) if kind == HOLE}
    assert holes == {"REASONING": False, "ANSWER": True}
    html = view.static_html()
    assert html.count('class="lmnb-hole-tag"') == 1
    assert html.index('class="lmnb-hole-tag"') > html.index('data-hole="ANSWER"')


def test_the_dataset_view_shows_conversations_as_their_lines(chat_path):
    from lmql_nb.notebook.views.dataset import DatasetView

    table = lmql_nb.model(f"local:{chat_path}").score_many_sync(
        [MESSAGES, MESSAGES[1:]], [" Paris", " Rome"], progress=False, cache=False)
    view = DatasetView(table)
    assert list(unpack(view.data)["prompt"]) == [
        "system: You answer in one word.\nuser: The capital of France is",
        "user: The capital of France is"]
    assert "user: The capital of France is" in view.static_html()


def test_the_token_view_labels_the_assistants_turn_after_the_rendered_prompt(chat_path):
    from lmql_nb.notebook.views import TokenView

    generation = lmql_nb.model(f"local:{chat_path}").generate_sync(
        MESSAGES, max_tokens=4, return_details=True, cache=False)
    view = TokenView(generation)
    assert view.role == "assistant"
    assert view.prompt.endswith("<|im_start|>assistant\n")  # control tokens kept, muted
    html = view.static_html()
    assert ">assistant</span>" in html and "&lt;|im_start|&gt;" in html
    plain = TokenView(lmql_nb.model(f"local:{chat_path}").generate_sync(
        "The capital", max_tokens=2, return_details=True, cache=False))
    assert plain.role == "" and "lmnb-trace-role" not in plain.static_html()
