// src/common.js
var MAGIC = "LMNB";
function decodeColumns(data) {
  if (!data) return {};
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength);
  if (bytes.byteLength === 0) return {};
  const decoder = new TextDecoder();
  if (decoder.decode(bytes.subarray(0, 4)) !== MAGIC) throw new Error("lmql_nb: bad data header");
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(4, true);
  const header = JSON.parse(decoder.decode(bytes.subarray(8, 8 + headerLength)));
  const columns = {};
  for (const column of header.columns) {
    const start = header.data_start + column.offset;
    const raw = bytes.slice(start, start + column.nbytes).buffer;
    columns[column.name] = decodeColumn(raw, column, decoder);
  }
  return columns;
}
function decodeColumn(raw, column, decoder) {
  switch (column.dtype) {
    case "f8":
      return new Float64Array(raw);
    case "i4":
      return new Int32Array(raw);
    case "u1":
      return new Uint8Array(raw);
    case "str": {
      const n = column.length;
      const offsets = new Uint32Array(raw, 0, n + 1);
      const text = new Uint8Array(raw, 4 * (n + 1));
      const strings = new Array(n);
      for (let i = 0; i < n; i++) strings[i] = decoder.decode(text.subarray(offsets[i], offsets[i + 1]));
      return strings;
    }
    default:
      throw new Error(`lmql_nb: unknown column type ${column.dtype}`);
  }
}
function h(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== void 0 && text !== null) element.textContent = String(text);
  return element;
}
var WHITESPACE = { " ": "\xB7", "	": "\u2192", "\n": "\u21B5", "\r": "\\r" };
var INVISIBLE = /[\u0000-\u001F\u007F-\u009F\u200B-\u200F\u2028\u2029\u2060\uFEFF]/;
function visibleForm(ch) {
  if (WHITESPACE[ch] !== void 0) return WHITESPACE[ch];
  if (!INVISIBLE.test(ch)) return void 0;
  const code = ch.codePointAt(0);
  return code < 256 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}
function appendVisibleText(parent, text, lineBreaks = true) {
  if (text === "") {
    const mark = h("span", "lmnb-ws lmnb-empty", "\u25CC");
    mark.title = "no complete character yet (part of a multi-byte character)";
    parent.appendChild(mark);
    return;
  }
  let run = "";
  const flush = () => {
    if (run) parent.appendChild(document.createTextNode(run));
    run = "";
  };
  for (const ch of text) {
    const shown = visibleForm(ch);
    if (shown === void 0) {
      run += ch;
      continue;
    }
    flush();
    const mark = h("span", "lmnb-ws", shown);
    if (ch !== " ") mark.title = `U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
    parent.appendChild(mark);
    if (ch === "\n" && lineBreaks) parent.appendChild(h("br"));
  }
  flush();
}
var clamp = (x) => Math.min(1, Math.max(0, x));
var METRICS = {
  prob: {
    label: "probability",
    confidence: (t) => Math.exp(t.logprob),
    legend: ["0", "1"]
  },
  logprob: {
    label: "log-probability (clamped at \u22125)",
    confidence: (t) => clamp(1 + t.logprob / 5),
    legend: ["\u2264 \u22125", "0"]
  },
  entropy: {
    label: "entropy of the next-token distribution (nats)",
    confidence: (t) => Number.isNaN(t.entropy) ? null : clamp(1 - t.entropy / 5),
    legend: ["\u2265 5", "0"]
  },
  rank: {
    label: "rank of the chosen token (1 = most likely)",
    confidence: (t) => t.rank > 0 ? 1 / t.rank : null,
    legend: ["many", "1"]
  }
};
function confidenceColour(confidence) {
  if (confidence === null || Number.isNaN(confidence)) return "";
  return `hsl(${Math.round(120 * clamp(confidence))} 85% 45% / 0.38)`;
}
function legendGradient() {
  return `linear-gradient(to right, ${confidenceColour(0)}, ${confidenceColour(0.5)}, ${confidenceColour(1)})`;
}
function formatNumber(x, digits = 4) {
  if (x === null || x === void 0 || Number.isNaN(x)) return "\u2013";
  if (x === -Infinity) return "\u2212\u221E";
  return x.toFixed(digits).replace("-", "\u2212");
}
function formatPercent(p) {
  if (Number.isNaN(p)) return "\u2013";
  if (p > 0 && p < 1e-4) return "<0.01%";
  return `${(100 * p).toFixed(p >= 0.1 ? 1 : 2)}%`;
}
var Tooltip = class {
  constructor(root) {
    this.element = h("div", "lmnb-tooltip");
    this.element.setAttribute("role", "tooltip");
    this.element.hidden = true;
    root.appendChild(this.element);
  }
  show(anchor, content) {
    this.element.replaceChildren(content);
    this.element.hidden = false;
    this.place(anchor);
  }
  place(anchor) {
    const style = this.element.style;
    const target = anchor.getBoundingClientRect();
    style.left = "0px";
    style.top = "0px";
    const origin = this.element.getBoundingClientRect();
    const box = { width: origin.width, height: origin.height };
    let left = Math.min(target.left, window.innerWidth - box.width - 8);
    let top = target.bottom + 4;
    if (top + box.height > window.innerHeight - 4 && target.top - box.height - 4 > 0) {
      top = target.top - box.height - 4;
    }
    style.left = `${Math.max(4, left) - origin.left}px`;
    style.top = `${top - origin.top}px`;
  }
  hide() {
    this.element.hidden = true;
  }
};

// src/token_view.js
var METRIC_BUTTONS = [
  ["prob", "prob", METRICS.prob.label],
  ["logprob", "logprob", METRICS.logprob.label],
  ["entropy", "entropy", METRICS.entropy.label],
  ["rank", "rank", METRICS.rank.label]
];
function describeToken(d, altStart, i) {
  const box = h("div", "lmnb-tip");
  const head = h("div", "lmnb-tip-head");
  const chosen = h("code", "lmnb-tip-token");
  appendVisibleText(chosen, d.text[i], false);
  head.appendChild(chosen);
  const stats = [
    `p ${formatPercent(Math.exp(d.logprob[i]))}`,
    `logprob ${formatNumber(d.logprob[i])}`,
    `rank ${d.rank[i] > 0 ? d.rank[i] : "\u2013"}`,
    `entropy ${formatNumber(d.entropy[i], 3)} nats`
  ];
  head.appendChild(h("div", "lmnb-tip-stats", stats.join(" \xB7 ")));
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
    const isChosen = d.token_id[i] >= 0 ? d.alt_token_id[a] === d.token_id[i] : d.alt_text[a] === d.text[i];
    chosenShown || (chosenShown = isChosen);
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
function prefixSums(values) {
  const sums = new Int32Array(values.length + 1);
  for (let i = 0; i < values.length; i++) sums[i + 1] = sums[i] + values[i];
  return sums;
}

// src/trace_view.js
var TEXT = 0;
var HOLE = 1;
var DISTRIBUTION = 2;
var TraceView = class {
  constructor(model, el) {
    this.model = model;
    this.root = h("div", "lmnb lmnb-trace");
    this.rows = [];
    this.data = {};
    const toolbar = h("div", "lmnb-toolbar");
    const legend = h("div", "lmnb-legend");
    const bar = h("span", "lmnb-legend-bar");
    bar.style.background = legendGradient();
    bar.title = `hole tokens coloured by ${METRICS.prob.label}`;
    legend.append(h("span", "lmnb-legend-end", "p 0"), bar, h("span", "lmnb-legend-end", "1"));
    toolbar.appendChild(legend);
    this.status = h("div", "lmnb-status");
    this.status.setAttribute("aria-live", "polite");
    toolbar.appendChild(this.status);
    this.root.appendChild(toolbar);
    this.body = h("div", "lmnb-trace-rows");
    this.root.appendChild(this.body);
    this.tooltip = new Tooltip(this.root);
    this.body.addEventListener("mouseover", (event) => {
      const token = event.target.closest?.(".lmnb-token");
      if (token) this.tooltip.show(token, describeToken(this.data, this.altStart, Number(token.dataset.i)));
    });
    this.body.addEventListener("mouseleave", () => this.tooltip.hide());
    this.handlers = {
      "change:data": () => this.update(),
      "change:status": () => this.updateStatus(),
      "change:model_identifier": () => this.updateStatus()
    };
    for (const [event, handler] of Object.entries(this.handlers)) model.on(event, handler);
    el.appendChild(this.root);
    this.update();
  }
  update() {
    const d = this.data = decodeColumns(this.model.get("data"));
    const rowSegments = d.row_segments ?? new Int32Array(0);
    this.segmentStart = prefixSums(rowSegments);
    this.tokenStart = prefixSums(d.seg_tokens ?? []);
    this.valueStart = prefixSums(d.seg_values ?? []);
    this.altStart = prefixSums(d.alt_count ?? []);
    for (let r = 0; r < rowSegments.length; r++) {
      const key = this.rowKey(r);
      if (this.rows[r]?.key === key) {
        this.relabel(this.rows[r].tokens, r);
        continue;
      }
      const element = this.rowElement(r);
      if (this.rows[r]) this.rows[r].element.replaceWith(element);
      else this.body.appendChild(element);
      this.rows[r] = { element, key, tokens: element.querySelectorAll(".lmnb-token") };
    }
    for (const row of this.rows.splice(rowSegments.length)) row.element.remove();
    this.updateStatus();
  }
  // what the row shows, cheaply: its label, each segment's kind, name, text and counts
  rowKey(r) {
    const d = this.data;
    const parts = [d.row_dropped[r], d.row_score[r]];
    for (let s = this.segmentStart[r]; s < this.segmentStart[r + 1]; s++) {
      parts.push(d.seg_kind[s], d.seg_name[s], d.seg_text[s], d.seg_tokens[s], d.seg_values[s]);
    }
    return JSON.stringify(parts);
  }
  // an unchanged row keeps its elements, but its tokens' indices into the columns move
  relabel(tokens, r) {
    let t = this.tokenStart[this.segmentStart[r]];
    for (const token of tokens) token.dataset.i = String(t++);
  }
  rowElement(r) {
    const d = this.data;
    const row = h("div", "lmnb-trace-row");
    row.dataset.row = String(r);
    if (d.row_segments.length > 1) {
      const head = h("div", "lmnb-trace-row-head");
      head.appendChild(h("span", "lmnb-sequence-label", `#${r + 1}`));
      const score = h("span", "lmnb-trace-score", `logprob ${formatNumber(d.row_score[r], 3)}`);
      score.title = "total log-probability of the holes' tokens";
      head.appendChild(score);
      if (d.row_dropped[r]) head.appendChild(h("span", "lmnb-trace-score", "dropped (not among the best beams)"));
      row.appendChild(head);
    }
    row.classList.toggle("lmnb-trace-dropped", Boolean(d.row_dropped[r]));
    const text = h("div", "lmnb-trace-text");
    const distributions = h("div", "lmnb-trace-distributions");
    const open = this.model.get("status") === "running";
    const last = this.segmentStart[r + 1] - 1;
    for (let s = this.segmentStart[r]; s <= last; s++) {
      const kind = d.seg_kind[s];
      if (kind === TEXT) text.appendChild(h("span", "lmnb-trace-prompt", d.seg_text[s]));
      else if (kind === HOLE) text.appendChild(this.holeElement(s, open && s === last));
      else if (kind === DISTRIBUTION) {
        text.appendChild(this.distributionChip(s));
        distributions.appendChild(this.distributionBars(s));
      }
    }
    row.appendChild(text);
    if (distributions.childElementCount) row.appendChild(distributions);
    return row;
  }
  holeElement(s, generating) {
    const d = this.data;
    const hole = h("span", "lmnb-hole");
    hole.dataset.name = d.seg_name[s];
    hole.classList.toggle("lmnb-hole-open", generating);
    hole.appendChild(holeLabel(d.seg_name[s]));
    const count = d.seg_tokens[s];
    if (count === 0) {
      const value = h("span", "lmnb-hole-value");
      appendVisibleText(value, d.seg_text[s]);
      hole.appendChild(value);
      return hole;
    }
    const start = this.tokenStart[s];
    const confidence = METRICS.prob.confidence;
    for (let i = start; i < start + count; i++) {
      const span = h("span", "lmnb-token");
      span.dataset.i = String(i);
      appendVisibleText(span, d.text[i]);
      span.style.background = confidenceColour(confidence({ logprob: d.logprob[i] }));
      hole.appendChild(span);
    }
    return hole;
  }
  distributionChip(s) {
    const d = this.data;
    const chip = h("span", "lmnb-hole lmnb-hole-distribution");
    chip.dataset.name = d.seg_name[s];
    chip.appendChild(holeLabel(d.seg_name[s]));
    const value = h("span", "lmnb-hole-value");
    appendVisibleText(value, d.seg_text[s]);
    chip.appendChild(value);
    chip.title = `distribution ${d.seg_name[s]}: the most likely value (P(${d.seg_name[s]}) below)`;
    return chip;
  }
  distributionBars(s) {
    const d = this.data;
    const box = h("div", "lmnb-distribution");
    box.dataset.name = d.seg_name[s];
    box.appendChild(h("div", "lmnb-distribution-title", `P(${d.seg_name[s]})`));
    const table = h("table", "lmnb-distribution-table");
    const start = this.valueStart[s];
    let best = start;
    for (let v = start; v < start + d.seg_values[s]; v++) if (d.dist_prob[v] > d.dist_prob[best]) best = v;
    for (let v = start; v < start + d.seg_values[s]; v++) {
      const row = h("tr", "lmnb-distribution-value");
      row.classList.toggle("lmnb-argmax", v === best);
      const value = h("td", "lmnb-col-value");
      appendVisibleText(value, d.dist_value[v], false);
      const prob = h("td", "lmnb-col-prob");
      const track = h("div", "lmnb-prob");
      const fill = h("div", "lmnb-prob-fill");
      fill.style.width = `${(100 * d.dist_prob[v]).toFixed(2)}%`;
      track.appendChild(fill);
      const number = h("span", "lmnb-prob-text lmnb-num", formatPercent(d.dist_prob[v]));
      number.title = String(d.dist_prob[v]);
      prob.append(track, number);
      row.append(value, prob);
      table.appendChild(row);
    }
    box.appendChild(table);
    return box;
  }
  updateStatus() {
    const d = this.data;
    const rows = d.row_segments?.length ?? 0;
    const kinds = d.seg_kind ?? [];
    const holes = kinds.filter ? kinds.filter((k) => k !== TEXT).length : 0;
    const parts = [];
    const model = this.model.get("model_identifier");
    if (model) parts.push(model);
    const label = this.model.get("decoder") || "";
    const kind = label.startsWith("beam") ? "beams" : label.startsWith("sample") ? "samples" : "results";
    if (rows > 1) parts.push(`${rows} ${kind}`);
    parts.push(`${holes} hole${holes === 1 ? "" : "s"} filled`);
    const status = this.model.get("status");
    if (status === "running") parts.push("running\u2026");
    else if (status !== "done") parts.push(status);
    this.status.textContent = parts.join(" \xB7 ");
    this.root.classList.toggle("lmnb-generating", status === "running");
    if (status !== "running") {
      for (const hole of this.body.querySelectorAll(".lmnb-hole-open")) hole.classList.remove("lmnb-hole-open");
    }
  }
  destroy() {
    for (const [event, handler] of Object.entries(this.handlers)) this.model.off(event, handler);
  }
};
function holeLabel(name) {
  const label = h("span", "lmnb-hole-name", name);
  label.setAttribute("aria-label", `hole ${name}`);
  return label;
}
function render({ model, el }) {
  const view = new TraceView(model, el);
  return () => view.destroy();
}
var trace_view_default = { render };
export {
  trace_view_default as default,
  render
};
