// ../lmql_nb/notebook/views/scale.json
var scale_default = {
  about: "The one colour scale of lmql_nb's views, read by colours.py (static HTML) and js/src/colours.js (widgets). A token's log-probability (nats) in [domain] picks one of `bins` colours interpolated between `stops` (matplotlib's cividis at 0, 1/8, ..., 1: sequential, colour-blind safe, rising in lightness). Ticks are probabilities on the log axis.",
  domain: [-8, 0],
  stops: ["#00224e", "#1a386f", "#434e6c", "#61656f", "#7d7c78", "#9b9476", "#bcae6c", "#dec958", "#fee838"],
  bins: 33,
  ticks: [[-6.907755278982137, "0.1%"], [-4.605170185988091, "1%"], [-2.302585092994046, "10%"], [0, "100%"]]
};

// src/dom.js
function h(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== void 0 && text !== null) element.textContent = String(text);
  return element;
}
var WHITESPACE = { " ": "\xB7", "	": "\u2192", "\n": "\u21B5", "\r": "\\r" };
var INVISIBLE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u200B-\u200F\u2028\u2029\u2060\uFEFF]/;
function escapeForm(ch) {
  const code = ch.codePointAt(0);
  return code < 256 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}
function mark(shown, raw, title) {
  const element = h("span", "lmnb-ws", shown);
  element.dataset.raw = raw;
  if (title) element.title = title;
  return element;
}
var codePoint = (ch) => `U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
function appendText(parent, text, { markers = false, lineBreaks = true } = {}) {
  if (text === "") {
    parent.appendChild(mark("\u25CC", "", "no complete character yet (part of a multi-byte character)"));
    return;
  }
  let run = "";
  const flush = () => {
    if (run) parent.appendChild(document.createTextNode(run));
    run = "";
  };
  for (const ch of text) {
    const invisible = INVISIBLE.test(ch);
    if (!invisible && !(markers && WHITESPACE[ch] !== void 0)) {
      run += ch;
      continue;
    }
    flush();
    parent.appendChild(mark(
      WHITESPACE[ch] ?? escapeForm(ch),
      ch,
      ch === " " ? "" : codePoint(ch)
    ));
    if (ch === "\n" && lineBreaks) parent.appendChild(document.createTextNode("\n"));
    else if (ch === " " || ch === "	") parent.appendChild(document.createElement("wbr"));
  }
  flush();
}
function appendMarkedText(parent, text) {
  appendText(parent, text, { markers: true, lineBreaks: false });
}
function copyText(fragment) {
  for (const element of fragment.querySelectorAll("[data-raw]")) {
    const raw = element.dataset.raw;
    const next = element.nextSibling;
    if (raw === "\n" && next?.nodeType === 3 && next.data.startsWith("\n")) next.data = next.data.slice(1);
    element.replaceWith(document.createTextNode(raw));
  }
  for (const element of fragment.querySelectorAll("[data-copy='skip']")) element.remove();
  return fragment.textContent;
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

// src/colours.js
var DARK_TEXT = "#111111";
var LIGHT_TEXT = "#ffffff";
var rgbOf = (hex2) => [1, 3, 5].map((i) => parseInt(hex2.slice(i, i + 2), 16));
function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function textColour(rgb) {
  const lum = luminance(rgb);
  const dark = (lum + 0.05) / (luminance(rgbOf(DARK_TEXT)) + 0.05);
  const light = 1.05 / (lum + 0.05);
  return dark >= light ? DARK_TEXT : LIGHT_TEXT;
}
var hex = (rgb) => `#${rgb.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
var TABLE = (() => {
  const stops = scale_default.stops.map(rgbOf);
  const table = [];
  for (let i = 0; i < scale_default.bins; i++) {
    const position = i / (scale_default.bins - 1) * (stops.length - 1);
    const k = Math.min(Math.floor(position), stops.length - 2);
    const f = position - k;
    const rgb = stops[k].map((a, c) => Math.floor(a + (stops[k + 1][c] - a) * f + 0.5));
    table.push([hex(rgb), textColour(rgb)]);
  }
  return table;
})();
function binOf(value, [lo, hi] = scale_default.domain) {
  if (value === null || value === void 0 || Number.isNaN(value)) return null;
  if (value === -Infinity) return 0;
  const index = Math.floor((value - lo) / (hi - lo) * (scale_default.bins - 1) + 0.5);
  return Math.min(scale_default.bins - 1, Math.max(0, index));
}
function paint(element, value, domain = scale_default.domain) {
  const index = binOf(value, domain);
  element.style.background = index === null ? "" : TABLE[index][0];
  element.style.color = index === null ? "" : TABLE[index][1];
}
var GRADIENT = `linear-gradient(to right, ${scale_default.stops.join(", ")})`;
var LOGPROB_SCALE = {
  domain: scale_default.domain,
  label: "probability of each token (log scale; colour by log-probability)",
  ticks: scale_default.ticks,
  below: `\u2264 ${scale_default.domain[0]}`
};
function legend(scale) {
  const root = h("div", "lmnb-legend");
  root.title = scale.label;
  const bar = h("div", "lmnb-legend-bar");
  bar.style.background = GRADIENT;
  const marker = h("div", "lmnb-legend-marker");
  marker.hidden = true;
  bar.appendChild(marker);
  const ticks = h("div", "lmnb-legend-ticks");
  const [lo, hi] = scale.domain;
  const place = (value) => `${100 * (Math.min(hi, Math.max(lo, value)) - lo) / (hi - lo)}%`;
  for (const [value, text] of scale.ticks) {
    const tick = h("span", "lmnb-legend-tick", text);
    tick.style.left = place(value);
    ticks.appendChild(tick);
  }
  root.append(bar, ticks);
  return {
    element: root,
    mark(value) {
      const show = value !== null && value !== void 0 && !Number.isNaN(value);
      marker.hidden = !show;
      if (show) marker.style.left = place(value === -Infinity ? lo : value);
    }
  };
}

// src/codec.js
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

// src/view.js
function defineView(ViewClass) {
  return {
    render({ model, el }) {
      const view = new ViewClass(model, el);
      return () => view.destroy();
    }
  };
}
var View = class {
  constructor(model, el, className) {
    this.model = model;
    this.el = el;
    this.root = h("div", `lmnb ${className}`);
    this.root.dataset.lmnbLive = "";
    this.columns = {};
    this._traitHandlers = [];
    this._domHandlers = [];
    this._frames = /* @__PURE__ */ new Set();
    this.tooltip = new Tooltip(this.root);
    el.appendChild(this.root);
  }
  /** The value of a trait. */
  get(name) {
    return this.model.get(name);
  }
  /** Set a trait and send it to Python. */
  set(name, value) {
    this.model.set(name, value);
    this.model.save_changes();
  }
  /** Call `handler` whenever the trait `name` changes (until `destroy`). */
  onChange(name, handler) {
    const event = `change:${name}`;
    this.model.on(event, handler);
    this._traitHandlers.push([event, handler]);
  }
  /** addEventListener that `destroy` undoes (for targets outside `root`, e.g. window). */
  listen(target, event, handler, options) {
    target.addEventListener(event, handler, options);
    this._domHandlers.push([target, event, handler, options]);
  }
  /**
   * Decode the `data` trait into `this.columns`: `this.columns.<name>` is a typed array
   * (numbers) or an array (strings); reading a column Python does not declare throws.
   */
  decode() {
    const columns = decodeColumns(this.get("data"));
    const view = this.constructor.name;
    this.columns = new Proxy(columns, {
      get(target, name) {
        if (typeof name === "string" && !(name in target) && Object.keys(target).length) {
          throw new Error(`lmql_nb: ${view} reads the column "${name}", which Python does not send`);
        }
        return target[name];
      }
    });
    return this.columns;
  }
  /**
   * Show a tooltip while the pointer is over an element matching `selector` inside
   * `container`: `describe(element)` gives its content (a Node) or null for none;
   * `onHover(element | null)` hears every change (e.g. to mark a legend).
   */
  hover(container, selector, describe, onHover = () => {
  }) {
    let current = null;
    this.listen(container, "mouseover", (event) => {
      const target = event.target.closest?.(selector);
      if (!target || !container.contains(target) || target === current) return;
      current = target;
      const content = describe(target);
      if (content) this.tooltip.show(target, content, event);
      else this.tooltip.hide();
      onHover(target);
    });
    const leave = () => {
      current = null;
      this.tooltip.hide();
      onHover(null);
    };
    this.listen(container, "mouseleave", (event) => {
      if (!this.tooltip.element.contains(event.relatedTarget)) leave();
    });
    this.listen(this.tooltip.element, "mouseleave", (event) => {
      if (!container.contains(event.relatedTarget)) leave();
    });
  }
  /** Make a table header sort: `sort()` on a click, or on Enter or Space when focused. */
  sortable(th, sort) {
    th.title = "click to sort";
    th.tabIndex = 0;
    this.listen(th, "click", sort);
    this.listen(th, "keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        sort();
      }
    });
  }
  /** Copying a selection inside `container` gives the text the marks stand for. */
  exactCopy(container) {
    this.listen(container, "copy", (event) => {
      const selection = document.getSelection();
      if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return;
      const parts = [];
      for (let i = 0; i < selection.rangeCount; i++) parts.push(copyText(selection.getRangeAt(i).cloneContents()));
      event.clipboardData.setData("text/plain", parts.join(""));
      event.preventDefault();
    });
  }
  /** Scroll `element` to its end once laid out (a long prompt shows what follows it). */
  scrollToEnd(element) {
    const frame = requestAnimationFrame(() => {
      this._frames.delete(frame);
      element.scrollTop = element.scrollHeight;
    });
    this._frames.add(frame);
  }
  destroy() {
    for (const [event, handler] of this._traitHandlers) this.model.off(event, handler);
    for (const [target, event, handler, options] of this._domHandlers) {
      target.removeEventListener(event, handler, options);
    }
    for (const frame of this._frames) cancelAnimationFrame(frame);
    this._traitHandlers = [];
    this._domHandlers = [];
    this.tooltip.hide();
  }
};
var GAP = 4;
function boundary(root) {
  const area = root.closest(".jp-OutputArea-output, .output_subarea, .lmnb-page") ?? root;
  let rect = area.getBoundingClientRect();
  let box = { left: rect.left, top: rect.top, right: rect.right, bottom: rect.bottom };
  const visible = { left: 0, top: 0, right: window.innerWidth, bottom: window.innerHeight };
  for (let node = area.parentElement; node && node !== document.body; node = node.parentElement) {
    const style = getComputedStyle(node);
    if (/(auto|scroll|hidden|clip)/.test(style.overflow + style.overflowX + style.overflowY)) {
      rect = node.getBoundingClientRect();
      visible.left = Math.max(visible.left, rect.left);
      visible.top = Math.max(visible.top, rect.top);
      visible.right = Math.min(visible.right, rect.right);
      visible.bottom = Math.min(visible.bottom, rect.bottom);
    }
  }
  box = {
    left: Math.max(box.left, visible.left),
    right: Math.min(box.right, visible.right),
    top: Math.max(box.top, visible.top),
    bottom: Math.min(box.bottom, visible.bottom)
  };
  return { box, visible };
}
function anchorRect(anchor, event) {
  const rects = [...anchor.getClientRects()];
  if (event && rects.length > 1) {
    const hit = rects.find((r) => event.clientY >= r.top && event.clientY <= r.bottom && event.clientX >= r.left - 1 && event.clientX <= r.right + 1);
    if (hit) return hit;
  }
  return rects[0] ?? anchor.getBoundingClientRect();
}
var Tooltip = class {
  constructor(root) {
    this.root = root;
    this.element = h("div", "lmnb-tooltip");
    this.element.setAttribute("role", "tooltip");
    this.element.dataset.copy = "skip";
    this.element.hidden = true;
    root.appendChild(this.element);
  }
  show(anchor, content, event) {
    this.element.replaceChildren(content);
    this.element.hidden = false;
    this.place(anchorRect(anchor, event));
  }
  place(target) {
    const style = this.element.style;
    const { box, visible } = boundary(this.root);
    style.left = "0px";
    style.top = "0px";
    style.maxWidth = `${Math.max(160, Math.min(440, box.right - box.left - 2 * GAP))}px`;
    const origin = this.element.getBoundingClientRect();
    const width = origin.width;
    const height = origin.height;
    const fitsIn = (area2) => ({
      below: target.bottom + GAP + height <= area2.bottom,
      above: target.top - GAP - height >= area2.top
    });
    let area = box;
    let fits = fitsIn(box);
    if (!fits.below && !fits.above) {
      area = visible;
      fits = fitsIn(visible);
    }
    let top;
    if (fits.below) top = target.bottom + GAP;
    else if (fits.above) top = target.top - GAP - height;
    else if (area.bottom - target.bottom >= target.top - area.top) top = target.bottom + GAP;
    else top = target.top - GAP - height;
    let left = Math.min(target.left, box.right - width - GAP);
    left = Math.max(left, box.left + GAP);
    style.left = `${left - origin.left}px`;
    style.top = `${top - origin.top}px`;
  }
  hide() {
    this.element.hidden = true;
  }
};

// src/views/heatmap.js
var AGGREGATIONS = [
  ["sum", "sum", "sum of the value's token log-probabilities"],
  ["mean", "mean", "that sum divided by the value's token count"],
  ["normalized", "normalized", "that sum divided by token count ** alpha"]
];
var COLUMNS = [
  ["value", "value"],
  ["tokens", "tokens"],
  ["sum", "sum"],
  ["mean", "mean"],
  ["normalized", "normalized"],
  ["prob", "P(value)"]
];
var Heatmap = class extends View {
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
    this.hover(
      this.body,
      ".lmnb-cell",
      (cell) => this.describe(Number(cell.dataset.v), Number(cell.dataset.t)),
      (cell) => this.legend.mark(cell ? this.cellLogprob(cell) : null)
    );
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
    this.status.textContent = labels.length ? `${values} value${values === 1 ? "" : "s"} \xB7 ${labels.length} models` : `${n} value${n === 1 ? "" : "s"}`;
    this.updateAggregation();
  }
  rowElement(v) {
    const d = this.columns;
    const row = h("tr", "lmnb-row");
    row.dataset.v = String(v);
    const value = h("td", "lmnb-col-value");
    const mark2 = h("span", "lmnb-argmax-mark", "\u2605");
    mark2.setAttribute("aria-hidden", "true");
    const label = h("span", "lmnb-value-text");
    appendMarkedText(label, d.value[v]);
    value.append(mark2, label);
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
    return (key === "sum" ? this.columns.score_sum : key === "mean" ? this.columns.score_mean : this.columns.score_normalized) ?? new Float64Array(0);
  }
  updateAggregation() {
    const agg = this.agg();
    this.aggButtons.setActive(agg);
    this.headers.prob.firstChild.textContent = `P(value) by ${agg}`;
    this.headers.prob.title = `softmax of the ${agg} scores across the values; click to sort`;
    for (const [key] of AGGREGATIONS) this.headers[key].classList.toggle("lmnb-agg-active", key === agg);
    const scores = this.scores(agg);
    const groups = /* @__PURE__ */ new Map();
    scores.forEach((_, v) => {
      const g = this.groupOf[v];
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(v);
    });
    this.probs = new Array(scores.length);
    const winners = /* @__PURE__ */ new Set();
    const winnerTexts = /* @__PURE__ */ new Map();
    for (const [g, members] of groups) {
      const probs = softmax(members.map((v) => scores[v]));
      members.forEach((v, k) => {
        this.probs[v] = probs[k];
      });
      let top = members[0];
      for (const v of members) if (scores[v] > scores[top]) top = v;
      winners.add(top);
      winnerTexts.set(g, this.columns.value[top]);
    }
    const disagree = new Set(winnerTexts.values()).size > 1;
    for (const [g, head] of (this.groupHeads ?? []).entries()) {
      head.verdict.textContent = disagree ? " \xB7 the models disagree" : "";
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
    const first = key === "value" ? "asc" : "desc";
    const next = current === key ? direction === "asc" ? "desc" : "asc" : first;
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
      th.setAttribute("aria-sort", active ? direction === "asc" ? "ascending" : "descending" : "none");
      th.querySelector(".lmnb-sort-mark").textContent = active ? direction === "asc" ? " \u25B2" : " \u25BC" : "";
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
    head.appendChild(h(
      "div",
      "lmnb-tip-stats",
      `logprob ${formatNumber(d.token_logprob[i])} \xB7 p ${formatPercent(Math.exp(d.token_logprob[i]))}`
    ));
    box.appendChild(head);
    const where = h("div", "lmnb-tip-note", `token ${t + 1} of ${d.token_count[v]} of `);
    const value = h("code");
    appendMarkedText(value, d.value[v]);
    where.appendChild(value);
    box.appendChild(where);
    return box;
  }
};
function softmax(scores) {
  let max = -Infinity;
  for (const s of scores) max = Math.max(max, s);
  const exps = Array.from(scores, (s) => Math.exp(s - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}
var heatmap_default = defineView(Heatmap);
export {
  heatmap_default as default
};
