"""A chat with a `%%lmql` program in a real JupyterLab, in Chromium: `await input()` shows
an input box inside the trace view, focused; typing and Enter send the message while the
cell runs, the model's reply appears, a second turn, done. The user's text stays text.
The expected conversation comes from the same program run by the Python API with
`inputs=` in this process. Screenshots in light and dark under artifacts/screenshots/."""

from __future__ import annotations

import nbformat
import pytest
from chat_models import CHAT_PROGRAM, CHAT_SAID
from conftest import ACCEPT_KERNEL, run_all
from screenshots import SCREENSHOTS
from test_widgets_in_lab import literal

ROLES = ["system", "user", "assistant", "user", "assistant"]


@pytest.fixture(scope="module")
def expected(chat_path):
    """The chat as the Python API runs it (before Playwright marks a loop running)."""
    import lmql_nb

    program = lmql_nb.query(CHAT_PROGRAM, is_async=False,
                            model=lmql_nb.model(f"local:{chat_path}"))
    result = program(inputs=CHAT_SAID)
    assert result.variables["A1"] and result.variables["A2"]  # replies to see
    return result


def _notebook(lab, chat_path) -> str:
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in [
        "%load_ext lmql_nb",
        f"%%lmql -m local:{chat_path} -o result\n{CHAT_PROGRAM}",
        # queued by Run All while the chat waits: runs once the chat is over
        "print('after the chat:', result.variables['A2'])",
    ]]
    nbformat.write(notebook, lab.root / "chat-input.ipynb")
    return "chat-input.ipynb"


def _start(lab, browser, chat_path, theme):
    """JupyterLab on the notebook, Run All, until the first input box shows."""
    name = _notebook(lab, chat_path)
    lab.set_theme(theme)
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.add_init_script(ACCEPT_KERNEL)
    try:
        page.goto(lab.notebook_url(name))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
        run_all(page)
        page.locator(".lmnb-chat-input").wait_for(timeout=120_000)
    except Exception:
        page.screenshot(path=str(SCREENSHOTS / "failure-chat-input.png"), full_page=True)
        context.close()
        raise
    return context, page


def _reply(view, name: str) -> str:
    """The text a hole shows (its tokens, or its value), without its name label."""
    return literal(view.locator(f".lmnb-hole[data-name='{name}']").evaluate(
        "el => { const c = el.cloneNode(true); c.querySelector('.lmnb-hole-name')?.remove();"
        " return c.textContent; }"))


def _box(page):
    return page.locator(".lmnb-trace .lmnb-chat-input")


def test_chat_in_the_trace_view(expected, lab, browser, chat_path, screenshots):
    context, page = _start(lab, browser, chat_path, "JupyterLab Light")
    try:
        view = page.locator(".lmnb-trace")
        box = _box(page)
        field = box.locator("input.lmnb-chat-field")
        # the box is inside the trace view, under the open user turn, and focused
        assert view.locator(".lmnb-trace-role").all_text_contents() == ["system", "user"]
        assert field.evaluate("el => el === document.activeElement")
        assert box.locator(".lmnb-chat-send").is_disabled()  # nothing typed yet
        page.keyboard.type(CHAT_SAID[0])
        page.keyboard.press("Enter")

        # the second question: its prompt text, after the model's first reply
        page.locator(".lmnb-chat-input .lmnb-chat-prompt", has_text="And now?").wait_for(
            timeout=60_000)
        assert _reply(view, "A1") == expected.variables["A1"]
        assert field.evaluate("el => el === document.activeElement")
        field.fill(CHAT_SAID[1])
        page.screenshot(path=str(screenshots / "chat-input-lab-light.png"),
                        clip=view.bounding_box())
        page.keyboard.press("Enter")

        page.wait_for_function(
            "() => !document.querySelector('.lmnb-trace').classList.contains("
            "'lmnb-generating')", timeout=60_000)
        assert box.count() == 0  # done: no box
        assert view.locator(".lmnb-trace-role").all_text_contents() == ROLES
        assert _reply(view, "A2") == expected.variables["A2"]
        # the user's turns as typed: text, never HTML
        text = view.locator(".lmnb-trace-text").text_content()
        assert CHAT_SAID[0] in text and CHAT_SAID[1] in text
        assert view.locator("b").count() == 0 and page.dialogs == []
        # the cell queued behind the chat ran after it
        page.get_by_text(f"after the chat: {expected.variables['A2']}").wait_for(
            timeout=60_000)
        view.screenshot(path=str(screenshots / "chat-input-lab-done-light.png"))
    except Exception:
        page.screenshot(path=str(screenshots / "failure-chat-input.png"), full_page=True)
        raise
    finally:
        context.close()


def test_dark_theme_and_end_chat(lab, browser, chat_path, screenshots):
    context, page = _start(lab, browser, chat_path, "JupyterLab Dark")
    try:
        background = page.evaluate(
            "getComputedStyle(document.body).getPropertyValue('--jp-layout-color0').trim()")
        assert background.lower() in ("#111111", "#111")
        page.keyboard.type(CHAT_SAID[0])
        view = page.locator(".lmnb-trace")
        page.screenshot(path=str(screenshots / "chat-input-lab-dark.png"),
                        clip=view.bounding_box())
        _box(page).locator(".lmnb-chat-end").click()
        page.wait_for_function(
            "() => !document.querySelector('.lmnb-trace').classList.contains("
            "'lmnb-generating')", timeout=60_000)
        assert view.locator(".lmnb-trace-role").all_text_contents() == ["system", "user"]
        assert _box(page).count() == 0
    finally:
        lab.set_theme("JupyterLab Light")
        context.close()


def test_the_stop_button_ends_the_chat_cell(lab, browser, chat_path, screenshots):
    context, page = _start(lab, browser, chat_path, "JupyterLab Light")
    try:
        page.locator(".jp-NotebookPanel-toolbar [data-command='notebook:interrupt-kernel']"
                     ).first.click()
        view = page.locator(".lmnb-trace")
        view.locator(".lmnb-status", has_text="interrupted").wait_for(timeout=30_000)
        assert _box(page).count() == 0
        # the trace so far stays; the cell says what it kept, without a traceback
        assert view.locator(".lmnb-trace-role").all_text_contents() == ["system", "user"]
        page.get_by_text("interrupted: kept 0 holes").wait_for(timeout=30_000)
        assert page.locator(".jp-OutputArea-output", has_text="Traceback").count() == 0
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=30_000)
    except Exception:
        page.screenshot(path=str(screenshots / "failure-chat-input-stop.png"), full_page=True)
        raise
    finally:
        context.close()
