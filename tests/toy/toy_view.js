// A toy view, to show that a new view is one JS file on the shared base plus one Python
// class (tests/notebook/test_views.py), with nothing else to edit.
import { paint } from "../../js/src/colours.js";
import { h } from "../../js/src/dom.js";
import { View, defineView } from "../../js/src/view.js";

class ToyView extends View {
  constructor(model, el) {
    super(model, el, "lmnb-toy");
    this.list = h("div", "lmnb-toy-words");
    this.root.append(this.list, this.tooltip.element);
    this.hover(this.list, ".lmnb-toy-word", (span) => h("div", "", `score ${span.dataset.score}`));
    this.onChange("data", () => this.draw());
    this.draw();
  }

  draw() {
    const d = this.decode();
    this.list.replaceChildren(...(d.word ?? []).map((word, i) => {
      const span = h("span", "lmnb-toy-word", word);
      span.dataset.score = String(d.score[i]);
      paint(span, d.score[i]);
      return span;
    }));
  }
}

export default defineView(ToyView);
