// What every view of generated tokens shares (the token view, the trace view): the
// per-token columns Python's `token_columns` packs (TOKEN_COLUMNS), the colour of a token
// and its hover card.
import { paint } from "./colours.js";
import { appendMarkedText, appendText, formatNumber, formatPercent, h, isBlank } from "./dom.js";

export function prefixSums(values) {
  const sums = new Int32Array(values.length + 1);
  for (let i = 0; i < values.length; i++) sums[i + 1] = sums[i] + values[i];
  return sums;
}

/** The log-probability token `i` is coloured by: among the allowed tokens, if constrained. */
export function logprobShown(d, i) {
  const constrained = d.constrained_logprob[i];
  return Number.isNaN(constrained) ? d.logprob[i] : constrained;
}

/** Token `i` as a coloured span (`data-i` = i) of its natural text (marked if `markers`
    or if it is only whitespace). */
export function tokenSpan(d, i, markers = false) {
  const span = h("span", "lmnb-token");
  span.dataset.i = String(i);
  appendText(span, d.text[i], { markers: markers || isBlank(d.text[i]) });
  paint(span, logprobShown(d, i));
  return span;
}

const isChosen = (d, i, tokenId, text) =>
  // remote models report no token ids (-1): compare texts there
  (d.token_id[i] >= 0 ? tokenId === d.token_id[i] : text === d.text[i]);

/**
 * The hover card of token `i`: its probability (among the allowed tokens first, under a
 * constraint), log-probability, rank and entropy; the allowed alternatives with their
 * renormalised probabilities; then the model's own top-k. `altStart` and `allowedStart`
 * are prefix sums of `d.alt_count` and `d.allowed_count`.
 */
export function describeToken(d, altStart, allowedStart, i) {
  const box = h("div", "lmnb-tip");
  const head = h("div", "lmnb-tip-head");
  const chosen = h("code", "lmnb-tip-token");
  appendMarkedText(chosen, d.text[i]);
  head.appendChild(chosen);
  const constrained = !Number.isNaN(d.constrained_logprob[i]);
  const stats = [];
  if (constrained) stats.push(`p ${formatPercent(Math.exp(d.constrained_logprob[i]))} among the allowed tokens`);
  stats.push(`${constrained ? "model's own p" : "p"} ${formatPercent(Math.exp(d.logprob[i]))}`,
             `logprob ${formatNumber(d.logprob[i])}`,
             `rank ${d.rank[i] > 0 ? d.rank[i] : "–"}`,
             `entropy ${formatNumber(d.entropy[i], 3)} nats`);
  head.appendChild(h("div", "lmnb-tip-stats", stats.join(" · ")));
  box.appendChild(head);

  if (d.allowed_count[i] > 0) {
    box.appendChild(h("div", "lmnb-tip-section", "allowed by the constraint"));
    const rows = [];
    for (let a = allowedStart[i]; a < allowedStart[i + 1]; a++) {
      rows.push({ text: d.allowed_text[a], logprob: d.allowed_logprob[a],
                  chosen: isChosen(d, i, d.allowed_token_id[a], d.allowed_text[a]) });
    }
    box.appendChild(alternativesTable(rows, "p allowed", "lmnb-allowed"));
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
    chosenShown ||= chosenRow;
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
