"""Screenshots of the views on the embedded Gemma, light and dark, for the README.

    python scripts/readme_screenshots.py [name ...]   # e.g. trace-view; all by default

Writes artifacts/screenshots/readme-*.png (the browser tests write theirs beside them).
Each view is drawn from its `to_html()` page in Debian's Chromium, with the page's light or
dark colour scheme, a token hovered.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

import lmql_nb

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "artifacts" / "screenshots"


def views() -> dict:
    m = lmql_nb.model("local:gemma-3-270m")
    story = m.generate_sync("The three most beautiful cities in Europe are", max_tokens=40,
                            decoder="sample", n=2, temperature=0.8, seed=3, top_logprobs=5,
                            return_details=True)
    answer = m.generate_sync("Q: Is Paris the capital of France?\nA:", choices=[" yes", " no",
                             " maybe"], top_logprobs=5, return_details=True)
    news = m.score_sync("Headline: Team wins the championship in overtime.\nTopic:",
                        [" sports", " politics", " science and technology", " music",
                         " cooking and food"])
    review = lmql_nb.run_sync(REVIEW_QUERY)
    return {"token-view": (lmql_nb.show(story), ".lmnb-token", 9),
            "constrained": (lmql_nb.show(answer), ".lmnb-token", 0),
            "heatmap": (lmql_nb.show(news, sort="prob:desc"), ".lmnb-cell", 4),
            # no hover: the card (the token view's) would cover the bars
            "trace-view": (lmql_nb.show(review), ".lmnb-token", None)}


# the README's %%lmql example
REVIEW_QUERY = (
    '"Review: We had a great stay. Hiking in the mountains was fabulous and the food is '
    'really good.\\n"\n'
    '"Q: What is the underlying sentiment of this review and why?\\n"\n'
    '"A:[ANALYSIS]" where STOPS_AT(ANALYSIS, ".") and len(TOKENS(ANALYSIS)) < 24\n'
    '"\\nBased on this, the overall sentiment of the message can be considered to be[CLS]" '
    'distribution CLS in [" positive", " neutral", " negative"]\n')


def main(names: list[str]) -> None:
    """Draw the views named in `names` (all when empty)."""
    OUT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp())
    drawn = views()  # before Playwright, whose sync API runs an event loop in this thread
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--headless", "--no-sandbox"])
        for name, (view, selector, index) in drawn.items():
            if names and name not in names:
                continue
            page_path = view.save_html(folder / f"{name}.html", title=name)
            for scheme in ("light", "dark"):
                page = browser.new_page(viewport={"width": 900, "height": 640},
                                        color_scheme=scheme)
                page.goto(page_path.as_uri())
                page.wait_for_selector(selector)
                if index is not None:
                    page.locator(selector).nth(index).hover()
                page.wait_for_timeout(300)
                path = OUT / f"readme-{name}-{scheme}.png"
                page.screenshot(path=str(path), full_page=True)
                page.close()
                print(path.relative_to(ROOT))
        browser.close()


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
