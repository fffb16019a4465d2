// Shared pieces of the widgets: the binary column codec, text-only DOM helpers,
// the colour scale and the hover tooltip.
//
// Model text is untrusted: everything here puts text into the page with textContent or
// createTextNode, never as HTML.

const MAGIC = "LMNB";

/** Decode the column container written by lmql_nb.notebook.codec.pack. */
export function decodeColumns(data) {
  if (!data) return {};
  const bytes = data instanceof Uint8Array
    ? data
    : new Uint8Array(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength);
  if (bytes.byteLength === 0) return {};
  const decoder = new TextDecoder();
  if (decoder.decode(bytes.subarray(0, 4)) !== MAGIC) throw new Error("lmql_nb: bad data header");
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(4, true);
  const header = JSON.parse(decoder.decode(bytes.subarray(8, 8 + headerLength)));
  const columns = {};
  for (const column of header.columns) {
    const start = header.data_start + column.offset;
    // slice() copies, which also aligns the data for the typed-array views
    const raw = bytes.slice(start, start + column.nbytes).buffer;
    columns[column.name] = decodeColumn(raw, column, decoder);
  }
  return columns;
}

function decodeColumn(raw, column, decoder) {
  switch (column.dtype) {
    case "f8": return new Float64Array(raw);
    case "i4": return new Int32Array(raw);
    case "u1": return new Uint8Array(raw);
    case "str": {
      const n = column.length;
      const offsets = new Uint32Array(raw, 0, n + 1);
      const text = new Uint8Array(raw, 4 * (n + 1));
      const strings = new Array(n);
      for (let i = 0; i < n; i++) strings[i] = decoder.decode(text.subarray(offsets[i], offsets[i + 1]));
      return strings;
    }
    default: throw new Error(`lmql_nb: unknown column type ${column.dtype}`);
  }
}

/** document.createElement with a class and (text-only) content. */
export function h(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined && text !== null) element.textContent = String(text);
  return element;
}

const WHITESPACE = { " ": "·", "\t": "→", "\n": "↵", "\r": "\\r" };
const INVISIBLE = /[\u0000-\u001F\u007F-\u009F\u200B-\u200F\u2028\u2029\u2060\uFEFF]/;

/** What to show for a character that would otherwise be invisible, or undefined. */
function visibleForm(ch) {
  if (WHITESPACE[ch] !== undefined) return WHITESPACE[ch];
  if (!INVISIBLE.test(ch)) return undefined;
  const code = ch.codePointAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/**
 * Append `text` to `parent` with its whitespace made visible: a space shows as a faint
 * "·", a tab as "→", a newline as "↵" followed by a real line break, control and
 * zero-width characters as escapes ("\x05", "\u200b"). An empty token
 * (a byte that completes no character yet) shows as a faint "◌".
 */
export function appendVisibleText(parent, text, lineBreaks = true) {
  if (text === "") {
    const mark = h("span", "lmnb-ws lmnb-empty", "◌");
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
    if (shown === undefined) { run += ch; continue; }
    flush();
    const mark = h("span", "lmnb-ws", shown);
    if (ch !== " ") mark.title = `U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
    parent.appendChild(mark);
    if (ch === "\n" && lineBreaks) parent.appendChild(h("br"));
  }
  flush();
}

const clamp = (x) => Math.min(1, Math.max(0, x));

/**
 * Colour metrics for a token: each maps a token's statistics to a confidence in [0, 1]
 * (1 = the model was sure), or null when the statistic is unknown.
 */
export const METRICS = {
  prob: {
    label: "probability",
    confidence: (t) => Math.exp(t.logprob),
    legend: ["0", "1"],
  },
  logprob: {
    label: "log-probability (clamped at −5)",
    confidence: (t) => clamp(1 + t.logprob / 5),
    legend: ["≤ −5", "0"],
  },
  entropy: {
    label: "entropy of the next-token distribution (nats)",
    confidence: (t) => (Number.isNaN(t.entropy) ? null : clamp(1 - t.entropy / 5)),
    legend: ["≥ 5", "0"],
  },
  rank: {
    label: "rank of the chosen token (1 = most likely)",
    confidence: (t) => (t.rank > 0 ? 1 / t.rank : null),
    legend: ["many", "1"],
  },
};

/** Background colour for a confidence in [0, 1]: red (unsure) through yellow to green. */
export function confidenceColour(confidence) {
  if (confidence === null || Number.isNaN(confidence)) return "";
  return `hsl(${Math.round(120 * clamp(confidence))} 85% 45% / 0.38)`;
}

export function legendGradient() {
  return `linear-gradient(to right, ${confidenceColour(0)}, ${confidenceColour(0.5)}, ${confidenceColour(1)})`;
}

export function formatNumber(x, digits = 4) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (x === -Infinity) return "−∞";
  return x.toFixed(digits).replace("-", "−");
}

export function formatPercent(p) {
  if (Number.isNaN(p)) return "–";
  if (p > 0 && p < 0.0001) return "<0.01%";
  return `${(100 * p).toFixed(p >= 0.1 ? 1 : 2)}%`;
}

/**
 * One floating tooltip per widget. It is `position: fixed` so that scrolling output
 * areas do not clip it; `place` corrects for ancestors (transforms) that would move it.
 */
export class Tooltip {
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
}

/** Buttons of which one is active: calls onSelect(key) when another is clicked. */
export function segmented(label, options, active, onSelect) {
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
