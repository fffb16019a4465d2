// Text-only DOM helpers shared by the views: elements, untrusted text, numbers, buttons.
//
// Model text is untrusted: everything here puts text into the page with textContent or
// createTextNode, never as HTML.

/** document.createElement with a class and (text-only) content. */
export function h(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined && text !== null) element.textContent = String(text);
  return element;
}

const WHITESPACE = { " ": "·", "\t": "→", "\n": "↵", "\r": "\\r" };
// control, zero-width and separator characters: invisible even in natural text
const INVISIBLE = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u200B-\u200F\u2028\u2029\u2060\uFEFF]/;

function escapeForm(ch) {
  const code = ch.codePointAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** A faint mark standing for `raw` text; `data-raw` keeps the text for copying. */
function mark(shown, raw, title) {
  const element = h("span", "lmnb-ws", shown);
  element.dataset.raw = raw;
  if (title) element.title = title;
  return element;
}

const codePoint = (ch) => `U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;

/**
 * Append untrusted `text` to `parent` as text nodes. Natural by default: spaces, tabs
 * and line breaks are themselves (the container's `white-space: pre-wrap` lays them
 * out). With `markers`, whitespace shows as faint "·", "→", "↵" (a newline still breaks
 * the line when `lineBreaks`). Control and zero-width characters always show as escapes
 * ("\x05", "\u200b"), and an empty token (a byte that completes no character yet) as a
 * faint "◌". Every mark keeps its raw text in `data-raw`, which `copyText` restores.
 */
export function appendText(parent, text, { markers = false, lineBreaks = true } = {}) {
  if (text === "") {
    parent.appendChild(mark("◌", "", "no complete character yet (part of a multi-byte character)"));
    return;
  }
  let run = "";
  const flush = () => {
    if (run) parent.appendChild(document.createTextNode(run));
    run = "";
  };
  for (const ch of text) {
    const invisible = INVISIBLE.test(ch);
    if (!invisible && !(markers && WHITESPACE[ch] !== undefined)) { run += ch; continue; }
    flush();
    parent.appendChild(mark(WHITESPACE[ch] ?? escapeForm(ch), ch,
                            ch === " " ? "" : codePoint(ch)));
    if (ch === "\n" && lineBreaks) parent.appendChild(document.createTextNode("\n"));
    // a marked space or tab is no break opportunity: give one back, so lines still
    // break only where the text has whitespace (never inside a word)
    else if (ch === " " || ch === "\t") parent.appendChild(document.createElement("wbr"));
  }
  flush();
}

/** True for text made only of whitespace (a "\n" hole, a " " token): always shown with
    its marks, so that it can be seen and hovered. */
export const isBlank = (text) => text !== "" && /^\s+$/.test(text);

/** Text shown in one line (tooltips, table cells): whitespace always marked. */
export function appendMarkedText(parent, text) {
  appendText(parent, text, { markers: true, lineBreaks: false });
}

/**
 * The text a copied DOM fragment stands for: marks give back their raw text, and the
 * line breaks that only follow a "↵" mark are dropped.
 */
export function copyText(fragment) {
  for (const element of fragment.querySelectorAll("[data-raw]")) {
    const raw = element.dataset.raw;
    const next = element.nextSibling;
    if (raw === "\n" && next?.nodeType === 3 && next.data.startsWith("\n")) next.data = next.data.slice(1);
    element.replaceWith(document.createTextNode(raw));
  }
  for (const element of fragment.querySelectorAll("[data-copy='skip']")) element.remove();
  return fragment.textContent;
}

export function formatNumber(x, digits = 4) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (x === -Infinity) return "−∞";
  return x.toFixed(digits).replace("-", "−");
}

/** As Python's `format_age`: "8 s", "3 min", "2 h", "4 days". */
export function formatAge(seconds) {
  if (seconds < 1) return "<1 s";
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h`;
  const days = Math.floor(seconds / 86400);
  return `${days} day${days === 1 ? "" : "s"}`;
}

export function formatPercent(p) {
  if (Number.isNaN(p)) return "–";
  if (p > 0 && p < 0.0001) return "<0.01%";
  return `${(100 * p).toFixed(p >= 0.1 ? 1 : 2)}%`;
}

/** The hover text of a prompt shown cut to its end: the whole prompt (its last 2000
    characters for a very long one). */
export function promptTitle(prompt) {
  return `the prompt${prompt.length > 2000 ? ` (its last 2000 characters)` : ""}:\n${prompt.slice(-2000)}`;
}

/** The "¶ whitespace" toggle: `onToggle(markers)` on each click. */
export function whitespaceToggle(onToggle) {
  const button = h("button", "lmnb-button lmnb-toggle", "¶ whitespace");
  button.type = "button";
  button.title = "show spaces, tabs and line breaks as · → ↵";
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
