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
function formatPercent(p) {
  if (Number.isNaN(p)) return "\u2013";
  if (p > 0 && p < 1e-4) return "<0.01%";
  return `${(100 * p).toFixed(p >= 0.1 ? 1 : 2)}%`;
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
function tokenSpan(d, i, markers = false) {
  const span = h("span", "lmnb-token");
  span.dataset.i = String(i);
  appendText(span, d.text[i], { markers: markers || isBlank(d.text[i]) });
  paint(span, logprobShown(d, i));
  return span;
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

// src/views/trace_view.js
var TEXT = 0;
var HOLE = 1;
var DISTRIBUTION = 2;
var STEP = 3;
var NESTED_BEGIN = 4;
var NESTED_END = 5;
var ROLE = 6;
var TraceView = class extends View {
  constructor(model, el) {
    super(model, el, "lmnb-trace");
    this.rows = [];
    this.markers = false;
    const toolbar = h("div", "lmnb-toolbar");
    this.whitespace = whitespaceToggle((markers) => {
      this.markers = markers;
      this.redraw();
    });
    this.legend = legend(LOGPROB_SCALE);
    this.status = h("div", "lmnb-status");
    this.status.setAttribute("aria-live", "polite");
    toolbar.append(this.whitespace, this.legend.element, this.status);
    this.root.appendChild(toolbar);
    this.body = h("div", "lmnb-trace-rows");
    this.chat = null;
    this.root.append(this.body, this.tooltip.element);
    this.hover(
      this.body,
      ".lmnb-token",
      (token) => describeToken(this.columns, this.altStart, this.allowedStart, Number(token.dataset.i)),
      (token) => this.legend.mark(token ? logprobShown(this.columns, Number(token.dataset.i)) : null)
    );
    this.exactCopy(this.body);
    this.onChange("data", () => this.update());
    this.onChange("status", () => this.updateStatus());
    this.onChange("model_identifier", () => this.updateStatus());
    this.onChange("question", () => this.updateQuestion());
    this.update();
    this.updateQuestion();
    this.model.send?.({ event: "ready" });
  }
  // the input box of the question waiting now, if any (one box per question id)
  updateQuestion() {
    const question = this.get("question") ?? {};
    const asking = question.id !== void 0 && this.get("status") === "running";
    if (this.chat && (!asking || this.chat.id !== question.id)) {
      this.chat.element.remove();
      this.chat = null;
    }
    if (!asking || this.chat) return;
    const { element, field } = this.chatBox(question);
    this.chat = { id: question.id, element };
    this.body.after(element);
    field.focus();
  }
  chatBox(question) {
    const form = h("form", "lmnb-chat-input");
    form.dataset.question = String(question.id);
    const label = h("label", "lmnb-chat-prompt", question.prompt || "user");
    const field = h("input", "lmnb-chat-field");
    field.type = "text";
    field.placeholder = "Your message \xB7 Enter sends";
    field.setAttribute("aria-label", question.prompt || "your message to the program");
    field.autocomplete = "off";
    label.appendChild(field);
    const send = h("button", "lmnb-chat-send", "Send");
    send.type = "submit";
    const end = h("button", "lmnb-chat-end", "End chat");
    end.type = "button";
    end.title = "end the chat: the program returns its result";
    const sendOnce = (message) => {
      if (field.disabled) return;
      field.disabled = send.disabled = end.disabled = true;
      form.classList.add("lmnb-chat-sent");
      this.model.send({ ...message, id: question.id });
    };
    const sync = () => {
      send.disabled = field.disabled || !field.value.trim();
    };
    field.addEventListener("input", sync);
    field.addEventListener("keydown", (event) => event.stopPropagation());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (field.value.trim()) sendOnce({ event: "answer", text: field.value });
    });
    end.addEventListener("click", () => sendOnce({ event: "end" }));
    form.append(label, send, end);
    sync();
    return { element: form, field };
  }
  redraw() {
    for (const row of this.rows) row.element.remove();
    this.rows = [];
    this.update();
  }
  update() {
    const d = this.decode();
    const rowSegments = d.row_segments ?? new Int32Array(0);
    this.segmentStart = prefixSums(rowSegments);
    this.tokenStart = prefixSums(d.seg_tokens ?? []);
    this.valueStart = prefixSums(d.seg_values ?? []);
    this.altStart = prefixSums(d.alt_count ?? []);
    this.allowedStart = prefixSums(d.allowed_count ?? []);
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
    const d = this.columns;
    const parts = [d.row_dropped[r], d.row_score[r], d.row_open?.[r]];
    for (let s = this.segmentStart[r]; s < this.segmentStart[r + 1]; s++) {
      parts.push(d.seg_kind[s], d.seg_name[s], d.seg_text[s], d.seg_detail?.[s], d.seg_tokens[s], d.seg_values[s]);
    }
    return JSON.stringify(parts);
  }
  // an unchanged row keeps its elements, but its tokens' indices into the columns move
  relabel(tokens, r) {
    let t = this.tokenStart[this.segmentStart[r]];
    for (const token of tokens) token.dataset.i = String(t++);
  }
  rowElement(r) {
    const d = this.columns;
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
    const open = Boolean(d.row_open?.[r]);
    const last = this.segmentStart[r + 1] - 1;
    const targets = [text];
    for (let s = this.segmentStart[r]; s <= last; s++) {
      const kind = d.seg_kind[s];
      const target = targets[targets.length - 1];
      if (kind === TEXT) {
        const prompt = h("span", "lmnb-trace-prompt");
        appendText(prompt, d.seg_text[s], { markers: this.markers });
        target.appendChild(prompt);
      } else if (kind === HOLE) target.appendChild(this.holeElement(s, open && s === last));
      else if (kind === DISTRIBUTION) {
        target.appendChild(this.distributionChip(s));
        distributions.appendChild(this.distributionBars(s));
      } else if (kind === STEP) target.append(...this.stepElements(s));
      else if (kind === ROLE) {
        if (target.childElementCount) target.appendChild(h("br"));
        target.appendChild(h("span", "lmnb-trace-role", d.seg_name[s]));
      } else if (kind === NESTED_BEGIN) {
        const [box, body] = this.nestedBox(s, this.get("status") === "running");
        target.appendChild(box);
        targets.push(body);
      } else if (kind === NESTED_END) {
        if (targets.length > 1) targets.pop();
        targets[targets.length - 1].appendChild(this.nestedValue(s));
      }
    }
    row.appendChild(text);
    if (distributions.childElementCount) row.appendChild(distributions);
    return row;
  }
  holeElement(s, generating) {
    const d = this.columns;
    const hole = h("span", "lmnb-hole");
    hole.dataset.name = d.seg_name[s];
    hole.classList.toggle("lmnb-hole-open", generating);
    hole.appendChild(holeLabel(d.seg_name[s]));
    if (d.seg_message?.[s]) {
      hole.classList.add("lmnb-hole-message");
      const tag = h("span", "lmnb-hole-tag", "message");
      tag.title = "@message: what the chat's user sees (the holes without it are the program's internal reasoning)";
      hole.appendChild(tag);
    }
    const count = d.seg_tokens[s];
    if (count === 0) {
      const value = h("span", "lmnb-hole-value");
      appendText(value, d.seg_text[s], { markers: this.markers || isBlank(d.seg_text[s]) });
      hole.appendChild(value);
      appendLimit(hole, d.seg_detail?.[s]);
      return hole;
    }
    const start = this.tokenStart[s];
    for (let i = start; i < start + count; i++) hole.appendChild(tokenSpan(d, i, this.markers));
    appendLimit(hole, d.seg_detail?.[s]);
    return hole;
  }
  distributionChip(s) {
    const d = this.columns;
    const chip = h("span", "lmnb-hole lmnb-hole-distribution");
    chip.dataset.name = d.seg_name[s];
    chip.appendChild(holeLabel(d.seg_name[s]));
    const value = h("span", "lmnb-hole-value");
    appendText(value, d.seg_text[s], { markers: this.markers || isBlank(d.seg_text[s]) });
    chip.appendChild(value);
    chip.title = `distribution ${d.seg_name[s]}: the most likely value (P(${d.seg_name[s]}) below)`;
    return chip;
  }
  distributionBars(s) {
    const d = this.columns;
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
      appendMarkedText(value, d.dist_value[v]);
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
  // a decorator or tool step: a chip with what ran (its outcome on hover), then the text
  // the prompt gained from it, if any
  stepElements(s) {
    const d = this.columns;
    const [step, label, detail] = (d.seg_detail[s] || "").split("\n");
    const chip = h("span", `lmnb-step lmnb-step-${step === "tool" ? "tool" : "decorator"}`);
    chip.dataset.name = d.seg_name[s];
    chip.appendChild(h("span", "lmnb-step-kind", step === "tool" ? "tool" : "decorator"));
    chip.appendChild(h("span", "lmnb-step-label", label ?? ""));
    chip.title = `${label ?? ""} ${detail ?? ""}`.trim();
    if (!d.seg_text[s]) return [chip];
    const text = h("span", "lmnb-trace-prompt lmnb-step-text");
    appendText(text, d.seg_text[s], { markers: this.markers });
    return [chip, text];
  }
  // a nested query: a collapsible box headed by its call, holding what it added to the
  // prompt (marked hidden when it was taken out again after the query returned)
  nestedBox(s, open) {
    const d = this.columns;
    const hidden = d.seg_detail[s] === "hidden";
    const box = h("details", "lmnb-nested");
    box.classList.toggle("lmnb-nested-hidden", hidden);
    box.dataset.name = d.seg_name[s];
    box.open = open;
    const summary = h("summary", "lmnb-nested-call");
    summary.appendChild(h("span", "lmnb-nested-query", d.seg_text[s]));
    if (hidden) {
      const badge = h("span", "lmnb-nested-badge", "hidden");
      badge.title = "the nested query returned a value: its text was taken out of the prompt again";
      summary.appendChild(badge);
    }
    const body = h("div", "lmnb-nested-body");
    box.append(summary, body);
    return [box, body];
  }
  nestedValue(s) {
    const d = this.columns;
    const hole = h("span", "lmnb-hole lmnb-hole-nested");
    hole.dataset.name = d.seg_name[s];
    hole.appendChild(holeLabel(d.seg_name[s]));
    const value = h("span", "lmnb-hole-value");
    appendText(value, d.seg_text[s], { markers: this.markers || isBlank(d.seg_text[s]) });
    hole.appendChild(value);
    hole.title = `${d.seg_name[s]} = ${d.seg_detail[s]}`;
    return hole;
  }
  updateStatus() {
    const d = this.columns;
    const rows = d.row_segments?.length ?? 0;
    const filled = [];
    for (let r = 0; r < rows; r++) {
      let n = 0;
      let depth = 0;
      for (let s = this.segmentStart[r]; s < this.segmentStart[r + 1]; s++) {
        const kind2 = d.seg_kind[s];
        if (kind2 === NESTED_BEGIN) depth++;
        else if (kind2 === NESTED_END) depth--;
        if (depth === 0 && (kind2 === HOLE || kind2 === DISTRIBUTION || kind2 === NESTED_END)) n++;
      }
      filled.push(n - (d.row_open?.[r] ? 1 : 0));
    }
    const parts = [];
    const model = this.get("model_identifier");
    if (model) parts.push(model);
    const label = this.get("decoder") || "";
    const kind = label.startsWith("beam") ? "beams" : label.startsWith("sample") ? "samples" : "results";
    if (rows > 1) parts.push(`${rows} ${kind}`);
    parts.push(holesLabel(filled));
    const status = this.get("status");
    if (status === "running") parts.push("running\u2026");
    else if (status !== "done") parts.push(status);
    this.status.textContent = parts.join(" \xB7 ");
    this.root.classList.toggle("lmnb-generating", status === "running");
    this.updateQuestion();
    if (status !== "running") {
      for (const hole of this.body.querySelectorAll(".lmnb-hole-open")) hole.classList.remove("lmnb-hole-open");
    }
  }
};
function holesLabel(counts) {
  if (!counts.length) return "0 holes filled";
  const low = Math.min(...counts);
  const high = Math.max(...counts);
  const noun = `hole${high === 1 ? "" : "s"} filled`;
  if (counts.length === 1) return `${high} ${noun}`;
  return low === high ? `${high} ${noun} in each` : `${low}\u2013${high} ${noun} per row`;
}
function appendLimit(hole, note) {
  if (!note) return;
  const limit = h("span", "lmnb-hole-limit", note);
  limit.title = "a length bound ended this hole, not the model or its constraints";
  hole.appendChild(limit);
}
function holeLabel(name) {
  const label = h("span", "lmnb-hole-name", name);
  label.setAttribute("aria-label", `hole ${name}`);
  return label;
}
var trace_view_default = defineView(TraceView);
export {
  trace_view_default as default
};
