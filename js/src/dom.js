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
  }
  flush();
}

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

export function formatPercent(p) {
  if (Number.isNaN(p)) return "–";
  if (p > 0 && p < 0.0001) return "<0.01%";
  return `${(100 * p).toFixed(p >= 0.1 ? 1 : 2)}%`;
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
