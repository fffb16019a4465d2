// The one colour scale of every view, from lmql_nb/notebook/views/scale.json (which the
// static HTML rendering in colours.py reads too): a token's log-probability picks one of
// `bins` colours of a cividis-like map (colour-blind safe, rising in lightness). The bin
// and the rounding are computed exactly as in colours.py, so one log-probability has one
// colour everywhere. Text on a bin is near-black or white, whichever contrasts more.
import SCALE from "../../lmql_nb/notebook/views/scale.json";
import { h } from "./dom.js";

const DARK_TEXT = "#111111";
const LIGHT_TEXT = "#ffffff";

const rgbOf = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

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

const hex = (rgb) => `#${rgb.map((c) => c.toString(16).padStart(2, "0")).join("")}`;

/** [background, text] of every bin, least likely first (as colours.table()). */
export const TABLE = (() => {
  const stops = SCALE.stops.map(rgbOf);
  const table = [];
  for (let i = 0; i < SCALE.bins; i++) {
    const position = (i / (SCALE.bins - 1)) * (stops.length - 1);
    const k = Math.min(Math.floor(position), stops.length - 2);
    const f = position - k;
    const rgb = stops[k].map((a, c) => Math.floor(a + (stops[k + 1][c] - a) * f + 0.5));
    table.push([hex(rgb), textColour(rgb)]);
  }
  return table;
})();

/** The bin of `value` on a [lo, hi] domain, or null for NaN / unknown. */
export function binOf(value, [lo, hi] = SCALE.domain) {
  if (value === null || value === undefined || Number.isNaN(value)) return null;
  if (value === -Infinity) return 0;
  const index = Math.floor(((value - lo) / (hi - lo)) * (SCALE.bins - 1) + 0.5);
  return Math.min(SCALE.bins - 1, Math.max(0, index));
}

/** Paint `element` for a value on `domain` (default: log-probability); clears it for null. */
export function paint(element, value, domain = SCALE.domain) {
  const index = binOf(value, domain);
  element.style.background = index === null ? "" : TABLE[index][0];
  element.style.color = index === null ? "" : TABLE[index][1];
}

const GRADIENT = `linear-gradient(to right, ${SCALE.stops.join(", ")})`;

/** The log-probability scale: its domain and probability ticks, for legends. */
export const LOGPROB_SCALE = {
  domain: SCALE.domain,
  label: "probability of each token (log scale; colour by log-probability)",
  ticks: SCALE.ticks,
  below: `≤ ${SCALE.domain[0]}`,
};

/**
 * A legend: the colour bar with labelled ticks and a marker that `mark(value)` moves to a
 * value's place (the hovered token), `mark(null)` hides. `scale` is {domain, label,
 * ticks: [[value, text]...]}, values increasing to the right.
 */
export function legend(scale) {
  const root = h("div", "lmnb-legend");
  root.title = scale.label;
  const bar = h("div", "lmnb-legend-bar");
  bar.style.background = GRADIENT;
  const marker = h("div", "lmnb-legend-marker");
  marker.hidden = true;
  bar.appendChild(marker);
  const ticks = h("div", "lmnb-legend-ticks");
  const [lo, hi] = scale.domain;
  const place = (value) => `${(100 * (Math.min(hi, Math.max(lo, value)) - lo)) / (hi - lo)}%`;
  for (const [value, text] of scale.ticks) {
    const tick = h("span", "lmnb-legend-tick", text);
    tick.style.left = place(value);
    ticks.appendChild(tick);
  }
  root.append(bar, ticks);
  return {
    element: root,
    mark(value) {
      const show = value !== null && value !== undefined && !Number.isNaN(value);
      marker.hidden = !show;
      if (show) marker.style.left = place(value === -Infinity ? lo : value);
    },
  };
}
