// The token view: generated tokens coloured by the model's confidence, one row per
// sequence, with the top-k alternatives on hover. Grows in place while generating.
import {
  METRICS, Tooltip, appendVisibleText, confidenceColour, decodeColumns, formatNumber,
  formatPercent, h, legendGradient, segmented,
} from "./common.js";

const METRIC_BUTTONS = [
  ["prob", "prob", METRICS.prob.label],
  ["logprob", "logprob", METRICS.logprob.label],
  ["entropy", "entropy", METRICS.entropy.label],
  ["rank", "rank", METRICS.rank.label],
];

class TokenView {
  constructor(model, el) {
    this.model = model;
    this.root = h("div", "lmnb lmnb-tokens");
    this.rows = [];
    this.data = {};

    const toolbar = h("div", "lmnb-toolbar");
    this.metricButtons = segmented("Colour by", METRIC_BUTTONS, this.metric(), (key) => {
      model.set("color_by", key);
      model.save_changes();
    });
    toolbar.appendChild(this.metricButtons.element);
    this.legend = h("div", "lmnb-legend");
    toolbar.appendChild(this.legend);
    this.status = h("div", "lmnb-status");
    this.status.setAttribute("aria-live", "polite");
    toolbar.appendChild(this.status);
    this.root.appendChild(toolbar);

    this.prompt = h("div", "lmnb-prompt");
    this.root.appendChild(this.prompt);
    this.sequences = h("div", "lmnb-sequences");
    this.root.appendChild(this.sequences);
    this.tooltip = new Tooltip(this.root);

    this.sequences.addEventListener("mouseover", (event) => {
      const token = event.target.closest?.(".lmnb-token");
      if (token) this.tooltip.show(token, this.describe(Number(token.dataset.i)));
    });
    this.sequences.addEventListener("mouseleave", () => this.tooltip.hide());

    this.handlers = {
      "change:data": () => this.updateData(),
      "change:color_by": () => this.recolour(),
      "change:status": () => this.updateStatus(),
      "change:finish_reasons": () => this.updateStatus(),
      "change:prompt": () => this.updatePrompt(),
    };
    for (const [event, handler] of Object.entries(this.handlers)) model.on(event, handler);
    el.appendChild(this.root);
    this.updatePrompt();
    this.updateData();
    this.recolour();
  }

  metric() {
    const name = this.model.get("color_by");
    return METRICS[name] ? name : "prob";
  }

  updatePrompt() {
    const prompt = this.model.get("prompt") || "";
    this.prompt.replaceChildren();
    this.prompt.hidden = prompt === "";
    this.prompt.appendChild(h("span", "lmnb-label", "prompt"));
    this.prompt.appendChild(h("span", "lmnb-prompt-text", prompt));
    // a long prompt shows its end: what the generation continues
    requestAnimationFrame(() => { this.prompt.scrollTop = this.prompt.scrollHeight; });
  }

  updateData() {
    const data = decodeColumns(this.model.get("data"));
    const lengths = data.seq_length ?? new Int32Array(0);
    const counts = data.alt_count ?? new Int32Array(0);
    this.data = data;
    this.sequenceStart = prefixSums(lengths);
    this.altStart = prefixSums(counts);
    const many = lengths.length > 1;
    for (let s = 0; s < lengths.length; s++) {
      let row = this.rows[s];
      if (!row) {
        const element = h("div", "lmnb-sequence");
        const label = h("span", "lmnb-sequence-label", `#${s + 1}`);
        label.hidden = !many;
        const tokens = h("div", "lmnb-sequence-tokens");
        element.append(label, tokens);
        this.sequences.appendChild(element);
        row = this.rows[s] = { element, label, tokens, rendered: 0 };
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
    }
    for (const row of this.rows.splice(lengths.length)) row.element.remove();
    this.updateStatus();
  }

  token(i) {
    const d = this.data;
    return { text: d.text[i], logprob: d.logprob[i], rank: d.rank[i], entropy: d.entropy[i] };
  }

  tokenElement(i) {
    const span = h("span", "lmnb-token");
    span.dataset.i = String(i);
    appendVisibleText(span, this.data.text[i]);
    span.style.background = confidenceColour(METRICS[this.metric()].confidence(this.token(i)));
    return span;
  }

  recolour() {
    const metric = this.metric();
    this.metricButtons.setActive(metric);
    this.legend.replaceChildren(
      h("span", "lmnb-legend-end", METRICS[metric].legend[0]),
      Object.assign(h("span", "lmnb-legend-bar"), { title: METRICS[metric].label }),
      h("span", "lmnb-legend-end", METRICS[metric].legend[1]),
    );
    this.legend.children[1].style.background = legendGradient();
    const confidence = METRICS[metric].confidence;
    for (const span of this.sequences.querySelectorAll(".lmnb-token")) {
      span.style.background = confidenceColour(confidence(this.token(Number(span.dataset.i))));
    }
  }

  updateStatus() {
    const lengths = this.data.seq_length ?? [];
    const total = lengths.reduce ? lengths.reduce((a, b) => a + b, 0) : 0;
    const parts = [];
    if (lengths.length > 1) parts.push(`${lengths.length} sequences`);
    parts.push(`${total} token${total === 1 ? "" : "s"}`);
    const status = this.model.get("status");
    if (status === "generating") parts.push("generating…");
    else if (status === "interrupted") parts.push("interrupted");
    const reasons = [...new Set(this.model.get("finish_reasons") || [])];
    if (status !== "generating" && reasons.length) parts.push(`finished: ${reasons.join(", ")}`);
    this.status.textContent = parts.join(" · ");
    this.root.classList.toggle("lmnb-generating", status === "generating");
  }

  describe(i) {
    return describeToken(this.data, this.altStart, i);
  }

  destroy() {
    for (const [event, handler] of Object.entries(this.handlers)) this.model.off(event, handler);
  }
}

/**
 * The hover card of token `i` of columns `d` (as `token_columns` packs them): its
 * probability, log-probability, rank and entropy and the top-k alternatives.
 * `altStart` holds prefix sums of `d.alt_count`.
 */
export function describeToken(d, altStart, i) {
  const box = h("div", "lmnb-tip");
  const head = h("div", "lmnb-tip-head");
  const chosen = h("code", "lmnb-tip-token");
  appendVisibleText(chosen, d.text[i], false);
  head.appendChild(chosen);
  const stats = [
    `p ${formatPercent(Math.exp(d.logprob[i]))}`,
    `logprob ${formatNumber(d.logprob[i])}`,
    `rank ${d.rank[i] > 0 ? d.rank[i] : "–"}`,
    `entropy ${formatNumber(d.entropy[i], 3)} nats`,
  ];
  head.appendChild(h("div", "lmnb-tip-stats", stats.join(" · ")));
  box.appendChild(head);

  const count = d.alt_count[i];
  if (count === 0) {
    box.appendChild(h("div", "lmnb-tip-note", "no alternatives recorded (generate with top_logprobs > 0)"));
    return box;
  }
  const table = h("table", "lmnb-alternatives");
  const headRow = h("tr");
  for (const title of ["#", "token", "probability", "logprob"]) headRow.appendChild(h("th", "", title));
  table.appendChild(h("thead")).appendChild(headRow);
  const body = table.appendChild(h("tbody"));
  const start = altStart[i];
  let chosenShown = false;
  for (let k = 0; k < count; k++) {
    const a = start + k;
    const row = h("tr", "lmnb-alternative");
    // remote models report no token ids (-1): compare texts there
    const isChosen = d.token_id[i] >= 0 ? d.alt_token_id[a] === d.token_id[i] : d.alt_text[a] === d.text[i];
    chosenShown ||= isChosen;
    row.classList.toggle("lmnb-chosen", isChosen);
    if (d.alt_blocked[a]) {
      row.classList.add("lmnb-blocked");
      row.title = "blocked by a constraint";
    }
    row.appendChild(h("td", "lmnb-num", String(k + 1)));
    const text = h("td", "lmnb-alt-token");
    appendVisibleText(text, d.alt_text[a], false);
    row.appendChild(text);
    const p = Math.exp(d.alt_logprob[a]);
    const probability = h("td", "lmnb-alt-prob");
    const bar = h("span", "lmnb-bar");
    bar.style.width = `${Math.max(1, Math.round(60 * p))}px`;
    probability.append(bar, h("span", "lmnb-num", formatPercent(p)));
    row.appendChild(probability);
    row.appendChild(h("td", "lmnb-num", formatNumber(d.alt_logprob[a])));
    body.appendChild(row);
  }
  box.appendChild(table);
  if (!chosenShown && d.rank[i] > 0) {
    box.appendChild(h("div", "lmnb-tip-note", `the chosen token is rank ${d.rank[i]}, outside the top ${count}`));
  }
  return box;
}

export function prefixSums(values) {
  const sums = new Int32Array(values.length + 1);
  for (let i = 0; i < values.length; i++) sums[i + 1] = sums[i] + values[i];
  return sums;
}

export function render({ model, el }) {
  const view = new TokenView(model, el);
  return () => view.destroy();
}

export default { render };
