// The scoring heatmap: one row per value, each token a cell coloured by its
// log-probability, the per-value totals, a probability bar across values and the argmax.
import {
  Tooltip, appendVisibleText, confidenceColour, decodeColumns, formatNumber, formatPercent, h,
  legendGradient, segmented,
} from "./common.js";

const CLAMP = 10; // cells at or below -CLAMP logprob share the "least likely" colour

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

class Heatmap {
  constructor(model, el) {
    this.model = model;
    this.root = h("div", "lmnb lmnb-heatmap");

    const toolbar = h("div", "lmnb-toolbar");
    this.aggButtons = segmented("Aggregation", AGGREGATIONS, this.agg(), (key) => {
      model.set("agg", key);
      model.save_changes();
    });
    toolbar.appendChild(this.aggButtons.element);
    const legend = h("div", "lmnb-legend");
    const bar = h("span", "lmnb-legend-bar");
    bar.style.background = legendGradient();
    bar.title = "token log-probability";
    legend.append(h("span", "lmnb-legend-end", `≤ −${CLAMP}`), bar, h("span", "lmnb-legend-end", "0"));
    toolbar.appendChild(legend);
    this.status = h("div", "lmnb-status");
    toolbar.appendChild(this.status);
    this.root.appendChild(toolbar);

    this.prompt = h("div", "lmnb-prompt");
    this.root.appendChild(this.prompt);

    const scroller = h("div", "lmnb-table-scroller");
    this.table = h("table", "lmnb-heatmap-table");
    const headRow = h("tr");
    this.headers = {};
    for (const [key, title] of COLUMNS) {
      const th = h("th", `lmnb-col-${key} lmnb-sortable`);
      th.appendChild(h("span", "", title));
      th.appendChild(h("span", "lmnb-sort-mark"));
      th.dataset.key = key;
      th.title = "click to sort";
      th.tabIndex = 0;
      th.addEventListener("click", () => this.toggleSort(key));
      th.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); this.toggleSort(key); }
      });
      this.headers[key] = th;
      headRow.appendChild(th);
    }
    this.table.appendChild(h("thead")).appendChild(headRow);
    this.body = this.table.appendChild(h("tbody"));
    scroller.appendChild(this.table);
    this.root.appendChild(scroller);
    this.tooltip = new Tooltip(this.root);

    this.body.addEventListener("mouseover", (event) => {
      const cell = event.target.closest?.(".lmnb-cell");
      if (cell) this.tooltip.show(cell, this.describe(Number(cell.dataset.v), Number(cell.dataset.t)));
    });
    this.body.addEventListener("mouseleave", () => this.tooltip.hide());

    this.handlers = {
      "change:data": () => this.build(),
      "change:agg": () => this.updateAggregation(),
      "change:sort": () => this.applySort(),
      "change:prompt": () => this.updatePrompt(),
      "change:model_identifier": () => this.updatePrompt(),
    };
    for (const [event, handler] of Object.entries(this.handlers)) model.on(event, handler);
    el.appendChild(this.root);
    this.updatePrompt();
    this.build();
  }

  agg() {
    const agg = this.model.get("agg");
    return AGGREGATIONS.some(([key]) => key === agg) ? agg : "sum";
  }

  updatePrompt() {
    this.prompt.replaceChildren(h("span", "lmnb-label", "prompt"),
                                h("span", "lmnb-prompt-text", this.model.get("prompt") || ""));
    const model = this.model.get("model_identifier");
    if (model) this.prompt.appendChild(h("span", "lmnb-model", model));
    scrollToEnd(this.prompt);
  }

  build() {
    const d = (this.data = decodeColumns(this.model.get("data")));
    const n = d.value?.length ?? 0;
    this.tokenStart = new Int32Array(n + 1);
    for (let v = 0; v < n; v++) this.tokenStart[v + 1] = this.tokenStart[v] + d.token_count[v];
    this.rowElements = [];
    const fragment = document.createDocumentFragment();
    for (let v = 0; v < n; v++) fragment.appendChild(this.rowElement(v));
    this.body.replaceChildren(fragment);
    this.status.textContent = `${n} value${n === 1 ? "" : "s"}`;
    this.updateAggregation();
  }

  rowElement(v) {
    const d = this.data;
    const row = h("tr", "lmnb-row");
    row.dataset.v = String(v);
    const value = h("td", "lmnb-col-value");
    const mark = h("span", "lmnb-argmax-mark", "★");
    mark.setAttribute("aria-hidden", "true");
    const label = h("span", "lmnb-value-text");
    appendVisibleText(label, d.value[v], false);
    value.append(mark, label);
    row.appendChild(value);

    const tokens = h("td", "lmnb-col-tokens");
    const cells = h("div", "lmnb-cells");
    for (let t = 0; t < d.token_count[v]; t++) {
      const i = this.tokenStart[v] + t;
      const cell = h("span", "lmnb-cell");
      cell.dataset.v = String(v);
      cell.dataset.t = String(t);
      appendVisibleText(cell, d.token[i], false);
      cell.style.background = confidenceColour(1 + d.token_logprob[i] / CLAMP);
      cells.appendChild(cell);
    }
    tokens.appendChild(cells);
    row.appendChild(tokens);

    const numbers = {};
    for (const key of ["sum", "mean", "normalized"]) {
      const score = d[`score_${key}`][v];
      const cell = h("td", `lmnb-col-${key} lmnb-num`, formatNumber(score));
      cell.title = String(score);
      numbers[key] = cell;
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
    return this.data[`score_${key}`] ?? new Float64Array(0);
  }

  updateAggregation() {
    const agg = this.agg();
    this.aggButtons.setActive(agg);
    for (const [key] of AGGREGATIONS) this.headers[key].classList.toggle("lmnb-agg-active", key === agg);
    const scores = this.scores(agg);
    this.probs = softmax(scores);
    let best = -1;
    for (let v = 0; v < scores.length; v++) if (best < 0 || scores[v] > scores[best]) best = v;
    this.rowElements.forEach(({ row, fill, text }, v) => {
      fill.style.width = `${(100 * this.probs[v]).toFixed(2)}%`;
      text.textContent = formatPercent(this.probs[v]);
      text.title = `softmax of the ${agg} scores across values: ${this.probs[v]}`;
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
    const [current, direction] = (this.model.get("sort") || "").split(":");
    // numbers sort best-first on the first click, text alphabetically
    const first = key === "value" ? "asc" : "desc";
    const next = current === key ? (direction === "asc" ? "desc" : "asc") : first;
    this.model.set("sort", `${key}:${next}`);
    this.model.save_changes();
  }

  sortKey(key) {
    const d = this.data;
    if (key === "value") return (v) => d.value[v];
    if (key === "tokens") return (v) => d.token_count[v];
    if (key === "prob") return (v) => this.probs[v];
    return (v) => this.scores(key)[v];
  }

  applySort() {
    const [key, direction] = (this.model.get("sort") || "").split(":");
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
    for (const v of order) fragment.appendChild(this.rowElements[v].row);
    this.body.appendChild(fragment);
  }

  describe(v, t) {
    const d = this.data;
    const i = this.tokenStart[v] + t;
    const box = h("div", "lmnb-tip");
    const head = h("div", "lmnb-tip-head");
    const token = h("code", "lmnb-tip-token");
    appendVisibleText(token, d.token[i], false);
    head.appendChild(token);
    head.appendChild(h("div", "lmnb-tip-stats",
      `logprob ${d.token_logprob[i]} · p ${formatPercent(Math.exp(d.token_logprob[i]))}`));
    box.appendChild(head);
    const where = h("div", "lmnb-tip-note", `token ${t + 1} of ${d.token_count[v]} of `);
    const value = h("code");
    appendVisibleText(value, d.value[v], false);
    where.appendChild(value);
    box.appendChild(where);
    return box;
  }

  destroy() {
    for (const [event, handler] of Object.entries(this.handlers)) this.model.off(event, handler);
  }
}

// a long prompt shows its end: what the values continue
function scrollToEnd(element) {
  requestAnimationFrame(() => { element.scrollTop = element.scrollHeight; });
}

function softmax(scores) {
  let max = -Infinity;
  for (const s of scores) max = Math.max(max, s);
  const exps = Array.from(scores, (s) => Math.exp(s - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

export function render({ model, el }) {
  const view = new Heatmap(model, el);
  return () => view.destroy();
}

export default { render };
