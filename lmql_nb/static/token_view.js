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
var isBlank = (text) => text !== "" && /^\s+$/.test(text);
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
function formatAge(seconds) {
  if (seconds < 1) return "<1 s";
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
  const days = Math.floor(seconds / 86400);
  return `${days} day${days === 1 ? "" : "s"}`;
}
function formatPercent(p) {
  if (Number.isNaN(p)) return "\u2013";
  if (p > 0 && p < 1e-4) return "<0.01%";
  return `${(100 * p).toFixed(p >= 0.1 ? 1 : 2)}%`;
}
function promptTitle(prompt) {
  return `the prompt${prompt.length > 2e3 ? ` (its last 2000 characters)` : ""}:
${prompt.slice(-2e3)}`;
}
function whitespaceToggle(onToggle) {
  const button = h("button", "lmnb-button lmnb-toggle", "\xB6 whitespace");
  button.type = "button";
  button.title = "show spaces, tabs and line breaks as \xB7 \u2192 \u21B5";
  button.setAttribute("aria-pressed", "false");
  let markers = false;
  button.addEventListener("click", () => {
    markers = !markers;
    button.classList.toggle("lmnb-active", markers);
    button.setAttribute("aria-pressed", String(markers));
    onToggle(markers);
  });
  return button;
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

// src/tokens.js
function prefixSums(values) {
  const sums = new Int32Array(values.length + 1);
  for (let i = 0; i < values.length; i++) sums[i + 1] = sums[i] + values[i];
  return sums;
}
function logprobShown(d, i) {
  const constrained = d.constrained_logprob[i];
  return Number.isNaN(constrained) ? d.logprob[i] : constrained;
}
var isChosen = (d, i, tokenId, text) => (
  // remote models report no token ids (-1): compare texts there
  d.token_id[i] >= 0 ? tokenId === d.token_id[i] : text === d.text[i]
);
function describeToken(d, altStart, allowedStart, i) {
  const box = h("div", "lmnb-tip");
  const head = h("div", "lmnb-tip-head");
  const chosen = h("code", "lmnb-tip-token");
  appendMarkedText(chosen, d.text[i]);
  head.appendChild(chosen);
  const constrained = !Number.isNaN(d.constrained_logprob[i]);
  const stats = [];
  if (constrained) stats.push(`p ${formatPercent(Math.exp(d.constrained_logprob[i]))} among the allowed tokens`);
  stats.push(
    `${constrained ? "model's own p" : "p"} ${formatPercent(Math.exp(d.logprob[i]))}`,
    `logprob ${formatNumber(d.logprob[i])}`,
    `rank ${d.rank[i] > 0 ? d.rank[i] : "\u2013"}`,
    `entropy ${formatNumber(d.entropy[i], 3)} nats`
  );
  head.appendChild(h("div", "lmnb-tip-stats", stats.join(" \xB7 ")));
  box.appendChild(head);
  if (d.allowed_count[i] > 0) {
    box.appendChild(h("div", "lmnb-tip-section", "allowed by the constraint"));
    const rows2 = [];
    for (let a = allowedStart[i]; a < allowedStart[i + 1]; a++) {
      rows2.push({
        text: d.allowed_text[a],
        logprob: d.allowed_logprob[a],
        chosen: isChosen(d, i, d.allowed_token_id[a], d.allowed_text[a])
      });
    }
    box.appendChild(alternativesTable(rows2, "p allowed", "lmnb-allowed"));
  }
  const count = d.alt_count[i];
  if (count === 0) {
    if (!constrained) box.appendChild(h("div", "lmnb-tip-note", "no alternatives recorded (generate with top_logprobs > 0)"));
    return box;
  }
  if (constrained) box.appendChild(h("div", "lmnb-tip-section", "the model's own top tokens"));
  const rows = [];
  let chosenShown = false;
  for (let a = altStart[i]; a < altStart[i + 1]; a++) {
    const chosenRow = isChosen(d, i, d.alt_token_id[a], d.alt_text[a]);
    chosenShown || (chosenShown = chosenRow);
    rows.push({ text: d.alt_text[a], logprob: d.alt_logprob[a], chosen: chosenRow, blocked: d.alt_blocked[a] });
  }
  box.appendChild(alternativesTable(rows, "probability", "lmnb-model-top"));
  if (!chosenShown && d.rank[i] > 0) {
    box.appendChild(h("div", "lmnb-tip-note", `the chosen token is rank ${d.rank[i]}, outside the top ${count}`));
  }
  return box;
}
function alternativesTable(rows, probabilityTitle, className) {
  const table = h("table", `lmnb-alternatives ${className}`);
  const headRow = h("tr");
  for (const title of ["#", "token", probabilityTitle, "logprob"]) headRow.appendChild(h("th", "", title));
  table.appendChild(h("thead")).appendChild(headRow);
  const body = table.appendChild(h("tbody"));
  rows.forEach((r, k) => {
    const row = h("tr", "lmnb-alternative");
    row.classList.toggle("lmnb-chosen", r.chosen);
    if (r.blocked) {
      row.classList.add("lmnb-blocked");
      row.title = "blocked by a constraint";
    }
    row.appendChild(h("td", "lmnb-num", String(k + 1)));
    const text = h("td", "lmnb-alt-token");
    appendMarkedText(text, r.text);
    row.appendChild(text);
    const p = Math.exp(r.logprob);
    const probability = h("td", "lmnb-alt-prob");
    const bar = h("span", "lmnb-bar");
    bar.style.width = `${Math.max(1, Math.round(60 * p))}px`;
    probability.append(bar, h("span", "lmnb-num", formatPercent(p)));
    row.appendChild(probability);
    row.appendChild(h("td", "lmnb-num", formatNumber(r.logprob)));
    body.appendChild(row);
  });
  return table;
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

// src/views/token_view.js
var METRICS = {
  prob: {
    button: "probability",
    scale: LOGPROB_SCALE,
    value: (view, i) => logprobShown(view.columns, i)
  },
  entropy: {
    button: "entropy",
    scale: {
      domain: [-6, 0],
      label: "entropy of the next-token distribution, in nats (left: uncertain, right: sure)",
      ticks: [[-6, "\u2265 6"], [-4, "4"], [-2, "2"], [0, "0 nats"]]
    },
    value: (view, i) => -view.columns.entropy[i]
  },
  rank: {
    button: "rank",
    scale: {
      domain: [-Math.log(100), 0],
      label: "rank of the chosen token among the model's candidates (1 = most likely)",
      ticks: [[-Math.log(100), "\u2265 100"], [-Math.log(10), "10"], [-Math.log(3), "3"], [0, "1"]]
    },
    value: (view, i) => view.columns.rank[i] > 0 ? -Math.log(view.columns.rank[i]) : NaN
  }
};
METRICS.logprob = METRICS.prob;
var BUTTONS = ["prob", "entropy", "rank"].map((key) => [key, METRICS[key].button, METRICS[key].scale.label]);
var PROMPT_TAIL = 60;
var TokenView = class extends View {
  constructor(model, el) {
    super(model, el, "lmnb-tokens");
    this.rows = [];
    this.markers = false;
    const toolbar = h("div", "lmnb-toolbar");
    this.metricButtons = segmented("Colour by", BUTTONS, this.metric(), (key) => this.set("color_by", key));
    this.whitespace = whitespaceToggle((markers) => {
      this.markers = markers;
      this.redraw();
    });
    this.legendSlot = h("div", "lmnb-legend-slot");
    this.status = h("div", "lmnb-status");
    this.status.setAttribute("aria-live", "polite");
    toolbar.append(this.metricButtons.element, this.whitespace, this.legendSlot, this.status);
    this.root.appendChild(toolbar);
    this.sequences = h("div", "lmnb-sequences");
    this.root.appendChild(this.sequences);
    this.root.appendChild(this.tooltip.element);
    this.hover(
      this.sequences,
      ".lmnb-token",
      (span) => this.describe(Number(span.dataset.i)),
      (span) => this.legend?.mark(span ? this.metricValue(Number(span.dataset.i)) : null)
    );
    this.exactCopy(this.sequences);
    this.collapsed = /* @__PURE__ */ new Set();
    this.listen(this.tooltip.element, "click", (event) => this.branchFrom(event.target.closest?.(".lmnb-branchable")));
    this.listen(this.tooltip.element, "keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") this.branchFrom(event.target.closest?.(".lmnb-branchable"));
    });
    this.listen(this.sequences, "click", (event) => this.rowTool(event.target.closest?.("[data-tool]")));
    this.onChange("data", () => this.updateData());
    this.onChange("color_by", () => this.recolour());
    this.onChange("status", () => this.updateStatus());
    this.onChange("stage", () => this.updateStatus());
    this.onChange("finish_reasons", () => this.updateStatus());
    this.onChange("cache_age", () => this.updateStatus());
    this.onChange("prompt", () => this.redraw());
    this.onChange("role", () => this.redraw());
    this.onChange("notice", () => this.updateStatus());
    this.onChange("can_branch", () => this.redraw());
    this.updateData();
    this.recolour();
    this.timer = setInterval(() => this.tick(), 1e3);
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
    const parents = d.row_parent ?? new Int32Array(lengths.length).fill(-1);
    if (this.rows.some((row, s) => s >= lengths.length || row.parent !== parents[s] || row.position !== d.row_position?.[s])) {
      for (const row of this.rows) row.element.remove();
      this.rows = [];
      this.collapsed.clear();
    }
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
        if (tail.length > PROMPT_TAIL) prompt.appendChild(h("span", "lmnb-ellipsis", "\u2026"));
        appendText(prompt, tail.slice(-PROMPT_TAIL), { markers: this.markers });
        prompt.title = tail.length > PROMPT_TAIL ? promptTitle(tail) : "the end of the prompt";
        const role = this.get("role") || "";
        if (role) prompt.appendChild(h("span", "lmnb-trace-role", role));
        const tokens = h("span", "lmnb-sequence-tokens");
        const head = h("div", "lmnb-branch-head");
        head.dataset.copy = "skip";
        head.hidden = true;
        if (parents[s] >= 0) prompt.hidden = true;
        text.append(head, prompt, tokens);
        const totals = h("div", "lmnb-sequence-totals");
        totals.dataset.copy = "skip";
        const tools = h("div", "lmnb-row-tools");
        tools.dataset.copy = "skip";
        element.append(label, text, totals, tools);
        this.sequences.appendChild(element);
        row = this.rows[s] = {
          element,
          label,
          head,
          tokens,
          totals,
          tools,
          rendered: 0,
          parent: parents[s],
          position: d.row_position?.[s] ?? -1
        };
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
      this.updateTotals(row, s);
      this.updateBranch(row, s);
    }
    for (const row of this.rows.splice(lengths.length)) row.element.remove();
    this.layoutTree();
    this.updateStatus();
  }
  /** The children of each row (branches, in the order they were made). */
  children() {
    const parents = this.columns.row_parent ?? [];
    const children = this.rows.map(() => []);
    parents.forEach((p, s) => {
      if (p >= 0) children[p].push(s);
    });
    return children;
  }
  /** Rows in tree order (each followed by its branches), indented by depth; the
      branches of a collapsed row hidden. */
  layoutTree() {
    const parents = this.columns.row_parent ?? [];
    const children = this.children();
    const visit = (s, depth, hidden) => {
      const row = this.rows[s];
      row.element.style.marginLeft = depth ? `${1.5 * depth}em` : "";
      row.element.hidden = hidden;
      this.sequences.appendChild(row.element);
      this.updateTools(row, s, children[s].length);
      for (const child of children[s]) visit(child, depth + 1, hidden || this.collapsed.has(s));
    };
    this.rows.forEach((_, s) => {
      if (!(parents[s] >= 0)) visit(s, 0, false);
    });
  }
  updateTools(row, s, childCount) {
    const tools = [];
    if (childCount > 0) {
      const folded = this.collapsed.has(s);
      const toggle = h("button", "lmnb-fold", `${folded ? "\u25B8" : "\u25BE"} ${childCount}`);
      toggle.type = "button";
      toggle.dataset.tool = "fold";
      toggle.dataset.row = String(s);
      toggle.title = `${folded ? "show" : "hide"} the ${childCount} branch${childCount === 1 ? "" : "es"} of #${s + 1}`;
      toggle.setAttribute("aria-expanded", String(!folded));
      tools.push(toggle);
    }
    if ((this.columns.row_parent?.[s] ?? -1) >= 0 && this.get("can_branch")) {
      const remove = h("button", "lmnb-remove", "\xD7");
      remove.type = "button";
      remove.dataset.tool = "remove";
      remove.dataset.row = String(s);
      remove.title = `remove branch #${s + 1} (and the branches grown from it)`;
      remove.setAttribute("aria-label", remove.title);
      tools.push(remove);
    }
    row.tools.replaceChildren(...tools);
    row.tools.hidden = tools.length === 0;
  }
  rowTool(button) {
    if (!button) return;
    const s = Number(button.dataset.row);
    if (button.dataset.tool === "fold") {
      if (this.collapsed.has(s)) this.collapsed.delete(s);
      else this.collapsed.add(s);
      this.layoutTree();
    } else if (button.dataset.tool === "remove") {
      this.model.send({ type: "remove", row: s });
    }
  }
  /** The label of a branch row: where it departs, with which token, and how it went. */
  updateBranch(row, s) {
    const d = this.columns;
    const p = d.row_parent?.[s] ?? -1;
    row.element.classList.toggle("lmnb-is-branch", p >= 0);
    row.head.hidden = p < 0;
    if (p < 0) return;
    const position = d.row_position[s];
    const replaced = d.text[this.sequenceStart[p] + position];
    const status = d.row_status[s];
    row.head.replaceChildren(`\u21B3 from #${p + 1} at token ${position + 1}: `);
    const was = h("code");
    appendText(was, replaced, { markers: true });
    row.head.append(was, " \u2192 ");
    if (d.seq_length[s] > 0) {
      const now = h("code");
      appendText(now, d.text[this.sequenceStart[s]], { markers: true });
      row.head.append(now);
    } else {
      row.head.append("\u2026");
    }
    if (status === "generating") row.head.append(" \xB7 generating\u2026");
    else if (status !== "done") row.head.append(h("span", "lmnb-branch-failed", ` \xB7 ${status}`));
  }
  /** The flat index of token `i`'s row and its position in it. */
  locate(i) {
    let s = 0;
    while (s + 1 < this.sequenceStart.length - 1 && this.sequenceStart[s + 1] <= i) s++;
    return { row: s, position: i - this.sequenceStart[s] };
  }
  branchFrom(target) {
    if (!target) return;
    this.model.send({
      type: "branch",
      row: Number(target.dataset.row),
      position: Number(target.dataset.position),
      token_id: Number(target.dataset.tokenId)
    });
    this.tooltip.hide();
  }
  updateTotals(row, s) {
    const d = this.columns;
    const many = (d.seq_length?.length ?? 0) > 1;
    row.totals.hidden = !many;
    if (!many) return;
    const own = (r) => {
      let sum2 = 0;
      for (let i = this.sequenceStart[r]; i < this.sequenceStart[r + 1]; i++) sum2 += d.logprob[i];
      return sum2;
    };
    const sum = own(s);
    const n = d.seq_length[s];
    const p = d.row_parent?.[s] ?? -1;
    if (p >= 0) {
      const total = d.row_shared_logprob[s] + sum;
      const parentTotal = d.row_shared_logprob[p] + own(p);
      row.totals.textContent = `\u03A3 logprob ${formatNumber(total, 2)} \xB7 #${p + 1}: ${formatNumber(parentTotal, 2)}`;
      row.totals.title = `log-probability of the whole text of this branch (the tokens it shares with #${p + 1} included), and of #${p + 1}`;
      return;
    }
    row.totals.textContent = n ? `\u03A3 logprob ${formatNumber(sum, 2)} \xB7 perplexity ${formatNumber(Math.exp(-sum / n), 2)}` : "";
    row.totals.title = "sum of the tokens' log-probabilities (the model's own), and exp(\u2212mean)";
  }
  tokenElement(i) {
    const span = h("span", "lmnb-token");
    span.dataset.i = String(i);
    const text = this.columns.text[i];
    appendText(span, text, { markers: this.markers || isBlank(text) });
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
      parts.push(`${this.get("stage") || "loading the model"}\u2026`);
    } else {
      if (lengths.length > 1) parts.push(`${lengths.length} sequences`);
      parts.push(`${total} token${total === 1 ? "" : "s"}`);
      const elapsed = this.get("elapsed") || 0;
      const age = this.get("cache_age") ?? -1;
      if (age >= 0) parts.push(`from the result cache (computed ${formatAge(age)} ago)`);
      else if (elapsed > 0 && total > 0) parts.push(`${(total / elapsed).toFixed(1)} tokens/s`);
      if (status === "generating") parts.push("generating\u2026");
      else if (status === "interrupted") parts.push(`interrupted: kept ${total} token${total === 1 ? "" : "s"}`);
      const reasons = [...new Set(this.get("finish_reasons") || [])];
      if (status === "done" && reasons.length) parts.push(`finished: ${reasons.join(", ")}`);
    }
    if (status !== this.shownStatus) {
      this.shownStatus = status;
      this.statusSince = Date.now();
    }
    if (status === "loading" || status === "generating" && total === 0) {
      parts.push(`${Math.round((Date.now() - this.statusSince) / 1e3)} s`);
    }
    const notice = this.get("notice");
    if (notice) parts.push(notice);
    this.status.textContent = parts.join(" \xB7 ");
    this.root.classList.toggle("lmnb-generating", status === "generating" || status === "loading");
  }
  tick() {
    const status = this.get("status");
    if (status === "loading" || status === "generating") this.updateStatus();
  }
  describe(i) {
    const box = describeToken(this.columns, this.altStart, this.allowedStart, i);
    const { row, position } = this.locate(i);
    const branchable = this.get("can_branch") && this.columns.row_status?.[row] === "done";
    this.tooltip.element.classList.toggle("lmnb-interactive", branchable);
    if (!branchable) return box;
    const mark2 = (selector, start, ids) => {
      box.querySelectorAll(`${selector} tr.lmnb-alternative`).forEach((tr, k) => {
        const tokenId = ids[start + k];
        if (tr.classList.contains("lmnb-chosen") || !(tokenId >= 0)) return;
        tr.classList.add("lmnb-branchable");
        tr.tabIndex = 0;
        tr.setAttribute("role", "button");
        tr.title = "branch here: continue with this token instead";
        Object.assign(tr.dataset, { row: String(row), position: String(position), tokenId: String(tokenId) });
      });
    };
    mark2(".lmnb-model-top", this.altStart[i], this.columns.alt_token_id);
    mark2(".lmnb-allowed", this.allowedStart[i], this.columns.allowed_token_id);
    if (box.querySelector(".lmnb-branchable")) {
      box.appendChild(h("div", "lmnb-tip-note", "click an alternative to branch from here"));
    }
    return box;
  }
};
var token_view_default = defineView(TokenView);
export {
  token_view_default as default
};
