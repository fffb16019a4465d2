// The comparison view: one text under several models. Each aligned piece (a token, or
// where tokenizers differ, the shortest run of whole tokens of every model) is coloured
// by how much more or less likely the second model finds it than the first, on the
// shared colour scale; hovering shows every model's numbers and top alternatives.
import { legend, paint } from "../colours.js";
import { appendMarkedText, appendText, formatNumber, h, promptTitle } from "../dom.js";
import { describeToken, prefixSums } from "../tokens.js";
import { View, defineView } from "../view.js";

const PROMPT_TAIL = 60;

class ComparisonView extends View {
  constructor(model, el) {
    super(model, el, "lmnb-comparison");
    const toolbar = h("div", "lmnb-toolbar");
    this.legendSlot = h("div", "lmnb-legend-slot");
    this.status = h("div", "lmnb-status");
    toolbar.append(this.legendSlot, this.status);
    this.text = h("div", "lmnb-sequence-text lmnb-comparison-text");
    this.totals = h("div", "lmnb-comparison-totals");
    this.root.append(toolbar, this.text, this.totals, this.tooltip.element);
    this.hover(this.text, ".lmnb-segment", (span) => this.describe(Number(span.dataset.k)),
               (span) => this.legend?.mark(span ? this.columns.seg_difference[Number(span.dataset.k)] : null));
    this.exactCopy(this.text);
    this.onChange("data", () => this.draw());
    this.onChange("labels", () => this.draw());
    this.onChange("difference_range", () => this.draw());
    this.draw();
  }

  draw() {
    const d = this.decode();
    const labels = this.get("labels") || [];
    const models = Math.max(1, labels.length);
    this.models = models;
    this.tokenStart = prefixSums(d.seg_model_tokens ?? []);
    this.altStart = prefixSums(d.alt_count ?? []);
    this.allowedStart = prefixSums(d.allowed_count ?? []);
    const [a, b] = labels;
    // ± the range Python chose: the first of 0.05, 0.1, ... that holds every difference
    const end = this.get("difference_range") || 2;
    this.domain = [-end, end];
    this.legend = legend({
      domain: this.domain,
      label: b ? `log-probability under ${b} minus under ${a}, per piece of text (nats)` : "",
      ticks: [[-end, `−${end}`], [0, "0"], [end, `+${end}`]],
    });
    const caption = h("span", "lmnb-legend-caption",
      b ? `${b} − ${a}: dark where ${b} finds the text less likely, light where more` : "");
    this.legendSlot.replaceChildren(this.legend.element, caption);
    const parts = [labels.join(" vs ")];
    if (!this.get("same_tokens")) parts.push("tokenizers differ: aligned on character spans");
    this.status.textContent = parts.join(" · ");

    const prompt = this.get("prompt") || "";
    const tail = h("span", "lmnb-prompt-tail");
    tail.dataset.copy = "skip";
    if (prompt.length > PROMPT_TAIL) tail.title = promptTitle(prompt);
    if (prompt.length > PROMPT_TAIL) tail.appendChild(h("span", "lmnb-ellipsis", "…"));
    appendText(tail, prompt.slice(-PROMPT_TAIL));
    const fragment = document.createDocumentFragment();
    fragment.appendChild(tail);
    const texts = d.seg_text ?? [];
    for (let k = 0; k < texts.length; k++) {
      const span = h("span", "lmnb-token lmnb-segment");
      span.dataset.k = String(k);
      appendText(span, texts[k]);
      paint(span, d.seg_difference[k], this.domain);
      fragment.appendChild(span);
    }
    this.text.replaceChildren(fragment);

    const sums = new Array(models).fill(0);
    for (let k = 0; k < texts.length; k++) {
      for (let m = 0; m < models; m++) sums[m] += d.seg_model_logprob[k * models + m];
    }
    this.totals.textContent = labels.map((label, m) => `${label}: Σ logprob ${formatNumber(sums[m], 2)}`).join(" · ");
  }

  /** Every model's numbers for piece `k`: its log-probability, then its tokens' cards. */
  describe(k) {
    const d = this.columns;
    const labels = this.get("labels") || [];
    const box = h("div", "lmnb-tip lmnb-comparison-tip");
    if (labels.length > 1) {
      box.appendChild(h("div", "lmnb-tip-stats",
        `difference ${formatNumber(d.seg_difference[k], 3)} (${labels[1]} − ${labels[0]})`));
    }
    labels.forEach((label, m) => {
      const cell = k * this.models + m;
      const section = h("div", "lmnb-tip-section", `${label}: logprob ${formatNumber(d.seg_model_logprob[cell])}`);
      section.dataset.model = String(m);
      box.appendChild(section);
      const count = d.seg_model_tokens[cell];
      if (count === 1) {  // one token: its full card, alternatives included
        const card = describeToken(d, this.altStart, this.allowedStart, this.tokenStart[cell]);
        card.classList.add("lmnb-model-card");
        box.appendChild(card);
        return;
      }
      // several tokens (the tokenizers cut here differently): one line each
      for (let t = 0; t < count; t++) {
        const i = this.tokenStart[cell] + t;
        const line = h("div", "lmnb-model-card lmnb-tip-stats");
        const token = h("code", "lmnb-tip-token");
        appendMarkedText(token, d.text[i]);
        line.append(token, ` logprob ${formatNumber(d.logprob[i])} · rank ${d.rank[i] > 0 ? d.rank[i] : "–"}`);
        box.appendChild(line);
      }
    });
    return box;
  }
}

export default defineView(ComparisonView);
