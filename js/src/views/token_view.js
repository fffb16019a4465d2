// The token view: generated text as it reads, each token coloured by the model's
// confidence, one row per sequence, the top alternatives on hover. Grows in place while
// generating. Under a constraint a token is coloured by its probability among the
// allowed tokens, and its tooltip lists the allowed choices first.
import { LOGPROB_SCALE, legend, paint } from "../colours.js";
import { appendText, formatNumber, h, segmented } from "../dom.js";
import { describeToken, logprobShown, prefixSums } from "../tokens.js";
import { View, defineView } from "../view.js";

// the other colourings keep their own scales (the same colours, their own labels)
const METRICS = {
  prob: {
    button: "probability",
    scale: LOGPROB_SCALE,
    value: (view, i) => logprobShown(view.columns, i),
  },
  entropy: {
    button: "entropy",
    scale: {
      domain: [-6, 0],
      label: "entropy of the next-token distribution, in nats (left: uncertain, right: sure)",
      ticks: [[-6, "≥ 6"], [-4, "4"], [-2, "2"], [0, "0 nats"]],
    },
    value: (view, i) => -view.columns.entropy[i],
  },
  rank: {
    button: "rank",
    scale: {
      domain: [-Math.log(100), 0],
      label: "rank of the chosen token among the model's candidates (1 = most likely)",
      ticks: [[-Math.log(100), "≥ 100"], [-Math.log(10), "10"], [-Math.log(3), "3"], [0, "1"]],
    },
    value: (view, i) => (view.columns.rank[i] > 0 ? -Math.log(view.columns.rank[i]) : NaN),
  },
};
METRICS.logprob = METRICS.prob;  // an older name of the same colouring

const BUTTONS = ["prob", "entropy", "rank"].map((key) => [key, METRICS[key].button, METRICS[key].scale.label]);
const PROMPT_TAIL = 60;  // characters of the prompt shown before each completion

class TokenView extends View {
  constructor(model, el) {
    super(model, el, "lmnb-tokens");
    this.rows = [];
    this.markers = false;

    const toolbar = h("div", "lmnb-toolbar");
    this.metricButtons = segmented("Colour by", BUTTONS, this.metric(), (key) => this.set("color_by", key));
    this.whitespace = h("button", "lmnb-button lmnb-toggle", "¶ whitespace");
    this.whitespace.type = "button";
    this.whitespace.title = "show spaces, tabs and line breaks as · → ↵";
    this.whitespace.setAttribute("aria-pressed", "false");
    this.listen(this.whitespace, "click", () => this.toggleMarkers());
    this.legendSlot = h("div", "lmnb-legend-slot");
    this.status = h("div", "lmnb-status");
    this.status.setAttribute("aria-live", "polite");
    toolbar.append(this.metricButtons.element, this.whitespace, this.legendSlot, this.status);
    this.root.appendChild(toolbar);

    this.sequences = h("div", "lmnb-sequences");
    this.root.appendChild(this.sequences);
    this.root.appendChild(this.tooltip.element);  // after the text: never copied with it
    this.hover(this.sequences, ".lmnb-token", (span) => this.describe(Number(span.dataset.i)),
               (span) => this.legend?.mark(span ? this.metricValue(Number(span.dataset.i)) : null));
    this.exactCopy(this.sequences);

    this.onChange("data", () => this.updateData());
    this.onChange("color_by", () => this.recolour());
    this.onChange("status", () => this.updateStatus());
    this.onChange("stage", () => this.updateStatus());
    this.onChange("finish_reasons", () => this.updateStatus());
    this.onChange("prompt", () => this.redraw());
    this.updateData();
    this.recolour();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  destroy() {
    clearInterval(this.timer);
    super.destroy();
  }

  metric() {
    const name = this.get("color_by");
    return METRICS[name] ? name : "prob";
  }

  metricValue(i) {
    return METRICS[this.metric()].value(this, i);
  }

  toggleMarkers() {
    this.markers = !this.markers;
    this.whitespace.classList.toggle("lmnb-active", this.markers);
    this.whitespace.setAttribute("aria-pressed", String(this.markers));
    this.redraw();
  }

  redraw() {
    for (const row of this.rows) row.element.remove();
    this.rows = [];
    this.updateData();
  }

  updateData() {
    const d = this.decode();
    const lengths = d.seq_length ?? new Int32Array(0);
    this.sequenceStart = prefixSums(lengths);
    this.altStart = prefixSums(d.alt_count ?? []);
    this.allowedStart = prefixSums(d.allowed_count ?? []);
    const many = lengths.length > 1;
    for (let s = 0; s < lengths.length; s++) {
      let row = this.rows[s];
      if (!row) {
        const element = h("div", "lmnb-sequence");
        const label = h("span", "lmnb-sequence-label", `#${s + 1}`);
        label.dataset.copy = "skip";
        const text = h("div", "lmnb-sequence-text");
        const prompt = h("span", "lmnb-prompt-tail");
        prompt.dataset.copy = "skip";
        const tail = this.get("prompt") || "";
        if (tail.length > PROMPT_TAIL) prompt.appendChild(h("span", "lmnb-ellipsis", "…"));
        appendText(prompt, tail.slice(-PROMPT_TAIL), { markers: this.markers });
        prompt.title = "the end of the prompt";
        const tokens = h("span", "lmnb-sequence-tokens");
        text.append(prompt, tokens);
        const totals = h("div", "lmnb-sequence-totals");
        totals.dataset.copy = "skip";
        element.append(label, text, totals);
        this.sequences.appendChild(element);
        row = this.rows[s] = { element, label, tokens, totals, rendered: 0 };
      }
      row.label.hidden = !many;
      if (lengths[s] < row.rendered) {
        row.tokens.replaceChildren();
        row.rendered = 0;
      }
      // tokens only ever get appended while generating: draw only the new ones
      const fragment = document.createDocumentFragment();
      const start = this.sequenceStart[s];
      for (let i = row.rendered; i < lengths[s]; i++) fragment.appendChild(this.tokenElement(start + i));
      row.tokens.appendChild(fragment);
      row.rendered = lengths[s];
      this.updateTotals(row, s);
    }
    for (const row of this.rows.splice(lengths.length)) row.element.remove();
    this.updateStatus();
  }

  updateTotals(row, s) {
    const d = this.columns;
    const many = (d.seq_length?.length ?? 0) > 1;
    row.totals.hidden = !many;
    if (!many) return;
    let sum = 0;
    const n = d.seq_length[s];
    for (let i = this.sequenceStart[s]; i < this.sequenceStart[s + 1]; i++) sum += d.logprob[i];
    row.totals.textContent = n ? `Σ logprob ${formatNumber(sum, 2)} · perplexity ${formatNumber(Math.exp(-sum / n), 2)}` : "";
    row.totals.title = "sum of the tokens' log-probabilities (the model's own), and exp(−mean)";
  }

  tokenElement(i) {
    const span = h("span", "lmnb-token");
    span.dataset.i = String(i);
    appendText(span, this.columns.text[i], { markers: this.markers });
    paint(span, this.metricValue(i), METRICS[this.metric()].scale.domain);
    return span;
  }

  recolour() {
    const metric = this.metric();
    this.metricButtons.setActive(metric);
    this.legend = legend(METRICS[metric].scale);
    this.legendSlot.replaceChildren(this.legend.element);
    const domain = METRICS[metric].scale.domain;
    for (const span of this.sequences.querySelectorAll(".lmnb-token")) {
      paint(span, this.metricValue(Number(span.dataset.i)), domain);
    }
  }

  updateStatus() {
    const lengths = this.columns.seq_length ?? [];
    let total = 0;
    for (const n of lengths) total += n;
    const status = this.get("status");
    const parts = [];
    if (status === "loading") {
      parts.push(`${this.get("stage") || "loading the model"}…`);
    } else {
      if (lengths.length > 1) parts.push(`${lengths.length} sequences`);
      parts.push(`${total} token${total === 1 ? "" : "s"}`);
      const elapsed = this.get("elapsed") || 0;
      if (elapsed > 0 && total > 0) parts.push(`${(total / elapsed).toFixed(1)} tokens/s`);
      if (status === "generating") parts.push("generating…");
      else if (status === "interrupted") parts.push(`interrupted: kept ${total} token${total === 1 ? "" : "s"}`);
      const reasons = [...new Set(this.get("finish_reasons") || [])];
      if (status === "done" && reasons.length) parts.push(`finished: ${reasons.join(", ")}`);
    }
    if (status !== this.shownStatus) {
      this.shownStatus = status;
      this.statusSince = Date.now();
    }
    if (status === "loading" || (status === "generating" && total === 0)) {
      parts.push(`${Math.round((Date.now() - this.statusSince) / 1000)} s`);
    }
    this.status.textContent = parts.join(" · ");
    this.root.classList.toggle("lmnb-generating", status === "generating" || status === "loading");
  }

  tick() {
    const status = this.get("status");
    if (status === "loading" || status === "generating") this.updateStatus();
  }

  describe(i) {
    return describeToken(this.columns, this.altStart, this.allowedStart, i);
  }
}

export default defineView(TokenView);
