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

// src/views/dataset.js
var Dataset = class extends View {
  constructor(model, el) {
    super(model, el, "lmnb-dataset");
    const toolbar = h("div", "lmnb-toolbar");
    this.legend = legend(LOGPROB_SCALE);
    this.status = h("div", "lmnb-status");
    toolbar.append(this.legend.element, this.status);
    this.root.appendChild(toolbar);
    const scroller = h("div", "lmnb-table-scroller");
    this.table = h("table", "lmnb-dataset-table");
    this.head = this.table.appendChild(h("thead"));
    this.body = this.table.appendChild(h("tbody"));
    scroller.appendChild(this.table);
    this.more = h("div", "lmnb-status lmnb-more");
    this.confusion = h("div", "lmnb-confusion");
    this.root.append(scroller, this.more, this.confusion, this.tooltip.element);
    this.hover(
      this.body,
      ".lmnb-p",
      (cell) => this.describe(Number(cell.dataset.i), Number(cell.dataset.j)),
      (cell) => this.legend.mark(cell ? this.logprob(Number(cell.dataset.i), Number(cell.dataset.j)) : null)
    );
    this.onChange("data", () => this.build());
    this.onChange("sort", () => this.drawRows());
    this.build();
  }
  logprob(i, j) {
    return this.columns.logprob[i * this.columns.value.length + j];
  }
  hasGold() {
    return (this.columns.gold?.length ?? 0) > 0;
  }
  build() {
    const d = this.decode();
    const rows = d.prompt?.length ?? 0;
    const values = d.value?.length ?? 0;
    const headRow = h("tr");
    this.headers = {};
    const header = (key, title, className, literal) => {
      const th = h("th", `lmnb-sortable ${className}`);
      const label = h("span", literal ? "lmnb-value-text" : "");
      if (literal) appendMarkedText(label, title);
      else label.textContent = title;
      th.append(label, h("span", "lmnb-sort-mark"));
      this.sortable(th, () => this.toggleSort(key));
      this.headers[key] = th;
      headRow.appendChild(th);
    };
    header("row", "#", "lmnb-num");
    header("prompt", "prompt", "lmnb-col-prompt");
    for (let j = 0; j < values; j++) header(`v${j}`, d.value[j], "lmnb-col-p", true);
    header("argmax", "argmax", "lmnb-col-label");
    if (this.hasGold()) header("gold", "gold", "lmnb-col-label");
    this.head.replaceChildren(headRow);
    let finished = 0, correct = 0;
    for (let i = 0; i < rows; i++) {
      if (d.argmax[i] < 0) continue;
      finished++;
      if (this.hasGold() && d.argmax[i] === d.gold[i]) correct++;
    }
    const parts = [
      `${rows} row${rows === 1 ? "" : "s"} \xD7 ${values} value${values === 1 ? "" : "s"}`,
      `P(value) by ${this.get("agg")}`
    ];
    if (finished < rows) parts.push(`${finished} finished`);
    if (this.hasGold() && finished) parts.push(`accuracy ${formatPercent(correct / finished)} (${correct} of ${finished})`);
    const model = this.get("model_identifier");
    if (model) parts.unshift(`model ${model}`);
    this.status.textContent = parts.join(" \xB7 ");
    this.accuracy = finished ? correct / finished : NaN;
    this.drawRows();
    this.drawConfusion();
  }
  toggleSort(key) {
    const [current, direction] = (this.get("sort") || "").split(":");
    const first = key.startsWith("v") ? "desc" : "asc";
    const next = current === key ? direction === "asc" ? "desc" : "asc" : first;
    this.set("sort", `${key}:${next}`);
  }
  sortKey(key) {
    const d = this.columns;
    const label = (index) => index < 0 ? "" : d.value[index];
    if (key === "prompt") return (i) => d.prompt[i];
    if (key === "argmax") return (i) => label(d.argmax[i]);
    if (key === "gold") return (i) => label(d.gold[i]);
    if (key.startsWith("v")) {
      const j = Number(key.slice(1));
      return (i) => {
        const lp = this.logprob(i, j);
        return Number.isNaN(lp) ? -Infinity : lp;
      };
    }
    return (i) => i;
  }
  drawRows() {
    const d = this.columns;
    const rows = d.prompt?.length ?? 0;
    const [key, direction] = (this.get("sort") || "").split(":");
    for (const [name, th] of Object.entries(this.headers)) {
      const active = name === key;
      th.setAttribute("aria-sort", active ? direction === "asc" ? "ascending" : "descending" : "none");
      th.querySelector(".lmnb-sort-mark").textContent = active ? direction === "asc" ? " \u25B2" : " \u25BC" : "";
    }
    const order = Array.from({ length: rows }, (_, i) => i);
    if (this.headers[key]) {
      const value = this.sortKey(key);
      const sign = direction === "desc" ? -1 : 1;
      order.sort((a, b) => {
        const x = value(a), y = value(b);
        return (x < y ? -1 : x > y ? 1 : a - b) * sign;
      });
    }
    const shown = Math.min(rows, this.get("shown_rows") || rows);
    const fragment = document.createDocumentFragment();
    for (let k = 0; k < shown; k++) fragment.appendChild(this.rowElement(order[k]));
    this.body.replaceChildren(fragment);
    this.more.hidden = shown >= rows;
    this.more.textContent = `showing ${shown} of ${rows} rows: sort to bring others to the top`;
  }
  rowElement(i) {
    const d = this.columns;
    const row = h("tr", "lmnb-row");
    row.dataset.i = String(i);
    row.appendChild(h("td", "lmnb-num lmnb-row-index", String(i)));
    const prompt = h("td", "lmnb-col-prompt");
    const text = h("div", "lmnb-prompt-cell");
    appendText(text, d.prompt[i]);
    text.title = `${d.prompt[i].length > 2e3 ? `\u2026${d.prompt[i].slice(-2e3)}` : d.prompt[i]}
(click to expand)`;
    text.tabIndex = 0;
    text.setAttribute("role", "button");
    text.setAttribute("aria-expanded", "false");
    const toggle = () => {
      const expanded = text.classList.toggle("lmnb-expanded");
      text.setAttribute("aria-expanded", String(expanded));
    };
    text.addEventListener("click", toggle);
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        toggle();
      }
    });
    prompt.appendChild(text);
    row.appendChild(prompt);
    for (let j = 0; j < d.value.length; j++) {
      const cell = h("td", "lmnb-col-p");
      const lp = this.logprob(i, j);
      if (Number.isNaN(lp)) {
        cell.textContent = "\u2013";
      } else {
        const box = h("span", "lmnb-p lmnb-num", formatPercent(Math.exp(lp)));
        box.dataset.i = String(i);
        box.dataset.j = String(j);
        paint(box, lp);
        if (d.argmax[i] === j) {
          box.classList.add("lmnb-best");
          box.prepend(h("span", "lmnb-argmax-star", "\u2605 "));
        }
        cell.appendChild(box);
      }
      row.appendChild(cell);
    }
    row.appendChild(this.labelCell(d.argmax[i]));
    if (this.hasGold()) {
      const wrong = d.argmax[i] >= 0 && d.argmax[i] !== d.gold[i];
      const cell = this.labelCell(d.gold[i], d.argmax[i] < 0 ? "" : wrong ? "\u2717 " : "\u2713 ");
      cell.classList.add(wrong ? "lmnb-wrong" : "lmnb-right");
      row.classList.toggle("lmnb-row-wrong", wrong);
      row.appendChild(cell);
    }
    return row;
  }
  labelCell(index, prefix = "") {
    const cell = h("td", "lmnb-col-label");
    if (prefix) cell.appendChild(h("span", "lmnb-mark", prefix));
    if (index < 0) cell.appendChild(document.createTextNode("\u2013"));
    else appendMarkedText(cell.appendChild(h("span", "lmnb-value-text")), this.columns.value[index]);
    return cell;
  }
  drawConfusion() {
    const d = this.columns;
    this.confusion.replaceChildren();
    if (!this.hasGold()) return;
    const n = d.value.length;
    const counts = Array.from({ length: n }, () => new Array(n).fill(0));
    for (let i = 0; i < d.prompt.length; i++) if (d.argmax[i] >= 0) counts[d.gold[i]][d.argmax[i]]++;
    const table = h("table", "lmnb-confusion-table");
    const head = h("tr");
    head.appendChild(h("th", "lmnb-corner", "gold \u2572 argmax"));
    for (let j = 0; j < n; j++) appendMarkedText(head.appendChild(h("th", "lmnb-value-text")), d.value[j]);
    table.appendChild(h("thead")).appendChild(head);
    const body = table.appendChild(h("tbody"));
    for (let g = 0; g < n; g++) {
      const row = h("tr");
      appendMarkedText(row.appendChild(h("th", "lmnb-value-text")), d.value[g]);
      for (let p = 0; p < n; p++) {
        const cell = h("td", `lmnb-num${g === p ? " lmnb-diagonal" : ""}`, String(counts[g][p]));
        cell.title = `${counts[g][p]} row(s) with gold ${JSON.stringify(d.value[g])} and argmax ${JSON.stringify(d.value[p])}`;
        row.appendChild(cell);
      }
      body.appendChild(row);
    }
    this.confusion.append(h("div", "lmnb-label", "confusion (rows: gold, columns: argmax)"), table);
  }
  describe(i, j) {
    const d = this.columns;
    const lp = this.logprob(i, j);
    const box = h("div", "lmnb-tip");
    const head = h("div", "lmnb-tip-head");
    const value = h("code", "lmnb-tip-token");
    appendMarkedText(value, d.value[j]);
    head.append(value, h(
      "div",
      "lmnb-tip-stats",
      `P ${formatPercent(Math.exp(lp))} \xB7 logprob ${formatNumber(lp)}`
    ));
    box.appendChild(head);
    const prompt = d.prompt[i];
    const note = h("div", "lmnb-tip-note", `row ${i}: `);
    const code = h("code");
    appendText(code, prompt.length > 160 ? `\u2026${prompt.slice(-159)}` : prompt);
    note.appendChild(code);
    box.appendChild(note);
    return box;
  }
};
var dataset_default = defineView(Dataset);
export {
  dataset_default as default
};
