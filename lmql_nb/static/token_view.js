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
function segmented(label, options, active, onSelect) {
  const group = h("div", "lmnb-segmented");
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", label);
  group.appendChild(h("span", "lmnb-segmented-label", label));
  const buttons = {};
  for (const [key, text, title] of options) {
    const button = h("button", "lmnb-button", text);
    button.type = "button";
    button.dataset.key = key;
    if (title) button.title = title;
    button.addEventListener("click", () => onSelect(key));
    buttons[key] = button;
    group.appendChild(button);
  }
  const setActive = (key) => {
    for (const [name, button] of Object.entries(buttons)) {
      button.classList.toggle("lmnb-active", name === key);
      button.setAttribute("aria-pressed", String(name === key));
    }
  };
  setActive(active);
  return { element: group, setActive };
}

// src/token_view.js
var METRIC_BUTTONS = [
  ["prob", "prob", METRICS.prob.label],
  ["logprob", "logprob", METRICS.logprob.label],
  ["entropy", "entropy", METRICS.entropy.label],
  ["rank", "rank", METRICS.rank.label]
];
var TokenView = class {
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
      "change:prompt": () => this.updatePrompt()
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
    requestAnimationFrame(() => {
      this.prompt.scrollTop = this.prompt.scrollHeight;
    });
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
      h("span", "lmnb-legend-end", METRICS[metric].legend[1])
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
    if (status === "generating") parts.push("generating\u2026");
    else if (status === "interrupted") parts.push("interrupted");
    const reasons = [...new Set(this.model.get("finish_reasons") || [])];
    if (status !== "generating" && reasons.length) parts.push(`finished: ${reasons.join(", ")}`);
    this.status.textContent = parts.join(" \xB7 ");
    this.root.classList.toggle("lmnb-generating", status === "generating");
  }
  describe(i) {
    return describeToken(this.data, this.altStart, i);
  }
  destroy() {
    for (const [event, handler] of Object.entries(this.handlers)) this.model.off(event, handler);
  }
};
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
function render({ model, el }) {
  const view = new TokenView(model, el);
  return () => view.destroy();
}
var token_view_default = { render };
export {
  token_view_default as default,
  describeToken,
  prefixSums,
  render
};
