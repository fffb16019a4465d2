// The scoring heatmap: one row per value, each token a cell coloured by its
// log-probability (the scale every view shares), the per-value totals, a probability bar
// across values (the softmax of the chosen aggregation) and the argmax.
import { LOGPROB_SCALE, legend, paint } from "../colours.js";
import { appendMarkedText, formatNumber, formatPercent, h, segmented } from "../dom.js";
import { View, defineView } from "../view.js";

const AGGREGATIONS = [
  ["sum", "sum", "sum of the value's token log-probabilities"],
  ["mean", "mean", "that sum divided by the value's token count"],
  ["normalized", "normalized", "that sum divided by token count ** alpha"],
];

const COLUMNS = [
  ["value", "value"],
  ["tokens", "tokens"],
  ["sum", "sum"],
  ["mean", "mean"],
  ["normalized", "normalized"],
  ["prob", "P(value)"],
];

class Heatmap extends View {
  constructor(model, el) {
    super(model, el, "lmnb-heatmap");

    const toolbar = h("div", "lmnb-toolbar");
    this.aggButtons = segmented("Aggregation", AGGREGATIONS, this.agg(), (key) => this.set("agg", key));
    this.legend = legend(LOGPROB_SCALE);
    this.status = h("div", "lmnb-status");
    toolbar.append(this.aggButtons.element, this.legend.element, this.status);
    this.root.appendChild(toolbar);

    this.model_line = h("div", "lmnb-model");
    this.prompt = h("div", "lmnb-prompt");
    this.root.append(this.model_line, this.prompt);

    const scroller = h("div", "lmnb-table-scroller");
    this.table = h("table", "lmnb-heatmap-table");
    const headRow = h("tr");
    this.headers = {};
    for (const [key, title] of COLUMNS) {
      const th = h("th", `lmnb-col-${key} lmnb-sortable`);
      th.appendChild(h("span", "", title));
      th.appendChild(h("span", "lmnb-sort-mark"));
      th.dataset.key = key;
      this.sortable(th, () => this.toggleSort(key));
      this.headers[key] = th;
      headRow.appendChild(th);
    }
    this.table.appendChild(h("thead")).appendChild(headRow);
    this.body = this.table.appendChild(h("tbody"));
    scroller.appendChild(this.table);
    this.root.appendChild(scroller);
    this.root.appendChild(this.tooltip.element);
    this.hover(this.body, ".lmnb-cell",
               (cell) => this.describe(Number(cell.dataset.v), Number(cell.dataset.t)),
               (cell) => this.legend.mark(cell ? this.cellLogprob(cell) : null));

    this.onChange("data", () => this.build());
    this.onChange("agg", () => this.updateAggregation());
    this.onChange("sort", () => this.applySort());
    this.onChange("prompt", () => this.updatePrompt());
    this.onChange("model_identifier", () => this.updatePrompt());
    this.onChange("group_labels", () => this.build());
    this.updatePrompt();
    this.build();
  }

  cellLogprob(cell) {
    return this.columns.token_logprob[this.tokenStart[Number(cell.dataset.v)] + Number(cell.dataset.t)];
  }

  agg() {
    const agg = this.get("agg");
    return AGGREGATIONS.some(([key]) => key === agg) ? agg : "sum";
  }

  updatePrompt() {
    // the label stays in place while a long prompt scrolls (to its end: what the values continue)
    const text = h("div", "lmnb-prompt-text", this.get("prompt") || "");
    this.prompt.replaceChildren(h("span", "lmnb-label", "prompt"), text);
    this.scrollToEnd(text);
    const model = this.get("model_identifier");
    this.model_line.hidden = !model;
    this.model_line.replaceChildren(h("span", "lmnb-label", "model"), h("code", "", model || ""));
  }

  build() {
    const d = this.decode();
    const n = d.value?.length ?? 0;
    this.tokenStart = new Int32Array(n + 1);
    for (let v = 0; v < n; v++) this.tokenStart[v + 1] = this.tokenStart[v] + d.token_count[v];
    this.rowElements = [];
    const fragment = document.createDocumentFragment();
    for (let v = 0; v < n; v++) fragment.appendChild(this.rowElement(v));
    this.body.replaceChildren(fragment);
    // a comparison of models: a group of rows per model, under a header row
    const labels = this.get("group_labels") || [];
    this.groupOf = d.group ?? new Int32Array(n);
    this.groupHeads = labels.map((label, g) => {
      const row = h("tr", "lmnb-group-row");
      const cell = h("th", "lmnb-group-head");
      cell.colSpan = COLUMNS.length;
      cell.append("model ", h("code", "", label));
      const verdict = h("span", "lmnb-group-verdict");
      cell.appendChild(verdict);
      row.appendChild(cell);
      row.dataset.group = String(g);
      return { row, verdict };
    });
    const values = labels.length ? n / labels.length : n;
    this.status.textContent = labels.length
      ? `${values} value${values === 1 ? "" : "s"} · ${labels.length} models`
      : `${n} value${n === 1 ? "" : "s"}`;
    this.updateAggregation();
  }

  rowElement(v) {
    const d = this.columns;
    const row = h("tr", "lmnb-row");
    row.dataset.v = String(v);
    const value = h("td", "lmnb-col-value");
    const mark = h("span", "lmnb-argmax-mark", "★");
    mark.setAttribute("aria-hidden", "true");
    const label = h("span", "lmnb-value-text");
    appendMarkedText(label, d.value[v]);
    value.append(mark, label);
    row.appendChild(value);

    const tokens = h("td", "lmnb-col-tokens");
    const cells = h("div", "lmnb-cells");
    for (let t = 0; t < d.token_count[v]; t++) {
      const i = this.tokenStart[v] + t;
      const cell = h("span", "lmnb-cell");
      cell.dataset.v = String(v);
      cell.dataset.t = String(t);
      appendMarkedText(cell, d.token[i]);
      paint(cell, d.token_logprob[i]);
      // a chat template's control token (a reply's end of turn): muted, still scored
      if (d.token_control?.[i]) cell.classList.add("lmnb-control");
      cells.appendChild(cell);
    }
    tokens.appendChild(cells);
    row.appendChild(tokens);

    for (const key of ["sum", "mean", "normalized"]) {
      const score = this.scores(key)[v];
      const cell = h("td", `lmnb-col-${key} lmnb-num`, formatNumber(score));
      cell.title = `${key} = ${score}`;
      row.appendChild(cell);
    }
    const prob = h("td", "lmnb-col-prob");
    const track = h("div", "lmnb-prob");
    const fill = h("div", "lmnb-prob-fill");
    const text = h("span", "lmnb-prob-text lmnb-num");
    track.appendChild(fill);
    prob.append(track, text);
    row.appendChild(prob);
    this.rowElements[v] = { row, fill, text };
    return row;
  }

  scores(key) {
    return (key === "sum" ? this.columns.score_sum : key === "mean" ? this.columns.score_mean
      : this.columns.score_normalized) ?? new Float64Array(0);
  }

  updateAggregation() {
    const agg = this.agg();
    this.aggButtons.setActive(agg);
    this.headers.prob.firstChild.textContent = `P(value) by ${agg}`;
    this.headers.prob.title = `softmax of the ${agg} scores across the values; click to sort`;
    for (const [key] of AGGREGATIONS) this.headers[key].classList.toggle("lmnb-agg-active", key === agg);
    const scores = this.scores(agg);
    // probabilities and the winner within each group (each model on its own)
    const groups = new Map();
    scores.forEach((_, v) => {
      const g = this.groupOf[v];
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(v);
    });
    this.probs = new Array(scores.length);
    const winners = new Set();
    const winnerTexts = new Map();
    for (const [g, members] of groups) {
      const probs = softmax(members.map((v) => scores[v]));
      members.forEach((v, k) => { this.probs[v] = probs[k]; });
      let top = members[0];
      for (const v of members) if (scores[v] > scores[top]) top = v;
      winners.add(top);
      winnerTexts.set(g, this.columns.value[top]);
    }
    const disagree = new Set(winnerTexts.values()).size > 1;
    for (const [g, head] of (this.groupHeads ?? []).entries()) {
      head.verdict.textContent = disagree ? " · the models disagree" : "";
      head.row.classList.toggle("lmnb-disagree", disagree);
    }
    this.rowElements.forEach(({ row, fill, text }, v) => {
      const best = winners.has(v) ? v : -1;
      row.classList.toggle("lmnb-disputed", disagree && [...winnerTexts.values()].includes(this.columns.value[v]));
      if (row.classList.contains("lmnb-disputed")) row.title = "a value the models disagree on: one of them picks it";
      else row.removeAttribute("title");
      fill.style.width = `${(100 * this.probs[v]).toFixed(2)}%`;
      text.textContent = formatPercent(this.probs[v]);
      text.title = `softmax of the ${agg} scores across the values: ${this.probs[v]}`;
      const isBest = v === best;
      row.classList.toggle("lmnb-argmax", isBest);
      if (isBest) row.setAttribute("aria-label", `argmax by ${agg}`);
      else row.removeAttribute("aria-label");
      row.querySelector(".lmnb-argmax-mark").title = isBest ? `highest ${agg} score` : "";
      for (const [key] of AGGREGATIONS) {
        row.querySelector(`td.lmnb-col-${key}`).classList.toggle("lmnb-agg-active", key === agg);
      }
    });
    this.applySort();
  }

  toggleSort(key) {
    const [current, direction] = (this.get("sort") || "").split(":");
    // numbers sort best-first on the first click, text alphabetically
    const first = key === "value" ? "asc" : "desc";
    const next = current === key ? (direction === "asc" ? "desc" : "asc") : first;
    this.set("sort", `${key}:${next}`);
  }

  sortKey(key) {
    const d = this.columns;
    if (key === "value") return (v) => d.value[v];
    if (key === "tokens") return (v) => d.token_count[v];
    if (key === "prob") return (v) => this.probs[v];
    return (v) => this.scores(key)[v];
  }

  applySort() {
    const [key, direction] = (this.get("sort") || "").split(":");
    for (const [name, th] of Object.entries(this.headers)) {
      const active = name === key;
      th.setAttribute("aria-sort", active ? (direction === "asc" ? "ascending" : "descending") : "none");
      th.querySelector(".lmnb-sort-mark").textContent = active ? (direction === "asc" ? " ▲" : " ▼") : "";
    }
    const order = this.rowElements.map((_, v) => v);
    if (this.headers[key]) {
      const value = this.sortKey(key);
      const sign = direction === "asc" ? 1 : -1;
      order.sort((a, b) => {
        const x = value(a), y = value(b);
        return (x < y ? -1 : x > y ? 1 : a - b) * sign;
      });
    }
    const fragment = document.createDocumentFragment();
    const heads = this.groupHeads ?? [];
    // sorting stays within each model's group
    if (heads.length) order.sort((a, b) => this.groupOf[a] - this.groupOf[b]);
    let group = -1;
    for (const v of order) {
      if (heads.length && this.groupOf[v] !== group) {
        group = this.groupOf[v];
        fragment.appendChild(heads[group].row);
      }
      fragment.appendChild(this.rowElements[v].row);
    }
    this.body.appendChild(fragment);
  }

  describe(v, t) {
    const d = this.columns;
    const i = this.tokenStart[v] + t;
    const box = h("div", "lmnb-tip");
    const head = h("div", "lmnb-tip-head");
    const token = h("code", "lmnb-tip-token");
    appendMarkedText(token, d.token[i]);
    head.appendChild(token);
    head.appendChild(h("div", "lmnb-tip-stats",
      `logprob ${formatNumber(d.token_logprob[i])} · p ${formatPercent(Math.exp(d.token_logprob[i]))}`));
    box.appendChild(head);
    const where = h("div", "lmnb-tip-note", `token ${t + 1} of ${d.token_count[v]} of `);
    const value = h("code");
    appendMarkedText(value, d.value[v]);
    where.appendChild(value);
    box.appendChild(where);
    return box;
  }

}

function softmax(scores) {
  let max = -Infinity;
  for (const s of scores) max = Math.max(max, s);
  const exps = Array.from(scores, (s) => Math.exp(s - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

export default defineView(Heatmap);
