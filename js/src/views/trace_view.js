// The trace view of a query program: the whole prompt as the program wrote it, each hole
// highlighted and labelled with its name, the hole's tokens coloured by probability with
// the alternatives on hover (as in the token view), each `distribution` as probability
// bars; one row per sample or beam. Rows are redrawn in place while the program runs.
//
// Model text is untrusted: it only ever reaches the page as text nodes.
//
// While a chat program's `await input()` waits (the `question` trait: {id, prompt}), an
// input box under the rows takes the user's message: Enter or Send sends it to Python
// ({event: "answer", id, text}), "End chat" ends the chat ({event: "end", id}). Once
// drawn, the view says so ({event: "ready"}): Python then waits for the box rather than
// asking through the kernel's stdin.
import { LOGPROB_SCALE, legend } from "../colours.js";
import { appendMarkedText, appendText, formatNumber, formatPercent, h, isBlank, whitespaceToggle } from "../dom.js";
import { describeToken, logprobShown, prefixSums, tokenSpan } from "../tokens.js";
import { View, defineView } from "../view.js";

const TEXT = 0;
const HOLE = 1;
const DISTRIBUTION = 2;
const STEP = 3; // a decorator or tool step (seg_detail: "kind\nlabel\noutcome")
const NESTED_BEGIN = 4; // a nested query's call (seg_detail "hidden" when taken out again)
const NESTED_END = 5; // what the outer prompt gained from it
const ROLE = 6; // a chat tag ({:user}): a turn starts; seg_name is its role

class TraceView extends View {
  constructor(model, el) {
    super(model, el, "lmnb-trace");
    this.rows = [];
    this.markers = false;

    const toolbar = h("div", "lmnb-toolbar");
    this.whitespace = whitespaceToggle((markers) => { this.markers = markers; this.redraw(); });
    this.legend = legend(LOGPROB_SCALE);
    this.status = h("div", "lmnb-status");
    this.status.setAttribute("aria-live", "polite");
    toolbar.append(this.whitespace, this.legend.element, this.status);
    this.root.appendChild(toolbar);

    this.body = h("div", "lmnb-trace-rows");
    this.chat = null; // the input box, while a question waits
    this.root.append(this.body, this.tooltip.element);
    this.hover(this.body, ".lmnb-token",
               (token) => describeToken(this.columns, this.altStart, this.allowedStart, Number(token.dataset.i)),
               (token) => this.legend.mark(token ? logprobShown(this.columns, Number(token.dataset.i)) : null));
    this.exactCopy(this.body);

    this.onChange("data", () => this.update());
    this.onChange("status", () => this.updateStatus());
    this.onChange("model_identifier", () => this.updateStatus());
    this.onChange("question", () => this.updateQuestion());
    this.update();
    this.updateQuestion();
    this.model.send?.({ event: "ready" }); // a kernel's view (a saved page has no send)
  }

  // the input box of the question waiting now, if any (one box per question id)
  updateQuestion() {
    const question = this.get("question") ?? {};
    const asking = question.id !== undefined && this.get("status") === "running";
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
    field.placeholder = "Your message · Enter sends";
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
    const sync = () => { send.disabled = field.disabled || !field.value.trim(); };
    field.addEventListener("input", sync);
    // the notebook's own shortcuts (Enter, a, b, d d, ...) must not act on what is typed
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
      // a row is redrawn only when what it shows changed (streaming sends every row)
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
    const open = Boolean(d.row_open?.[r]);  // its last hole is still being filled
    const last = this.segmentStart[r + 1] - 1;
    // nested queries draw into their own box: `targets` ends with the innermost open one
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
        // a turn starts on its own line, labelled with its role (text, never HTML)
        if (target.childElementCount) target.appendChild(h("br"));
        target.appendChild(h("span", "lmnb-trace-role", d.seg_name[s]));
      }
      else if (kind === NESTED_BEGIN) {
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
      // [@message X]: the text a chat program's user sees (other holes are internal)
      hole.classList.add("lmnb-hole-message");
      const tag = h("span", "lmnb-hole-tag", "message");
      tag.title = "@message: what the chat's user sees (the holes without it are the program's internal reasoning)";
      hole.appendChild(tag);
    }
    const count = d.seg_tokens[s];
    if (count === 0) {
      // a value without per-token data (or no tokens yet): its text, uncoloured
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
    // finished holes per row (one count everywhere: a hole still being filled is not)
    const filled = [];
    for (let r = 0; r < rows; r++) {
      // at the top level only (what %%lmql sets as variables): a nested query counts once
      let n = 0;
      let depth = 0;
      for (let s = this.segmentStart[r]; s < this.segmentStart[r + 1]; s++) {
        const kind = d.seg_kind[s];
        if (kind === NESTED_BEGIN) depth++;
        else if (kind === NESTED_END) depth--;
        if (depth === 0 && (kind === HOLE || kind === DISTRIBUTION || kind === NESTED_END)) n++;
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
    if (status === "running") parts.push("running…");
    else if (status !== "done") parts.push(status);
    this.status.textContent = parts.join(" · ");
    this.root.classList.toggle("lmnb-generating", status === "running");
    this.updateQuestion();
    if (status !== "running") {
      for (const hole of this.body.querySelectorAll(".lmnb-hole-open")) hole.classList.remove("lmnb-hole-open");
    }
  }

}

/** As Python's `holes_label`: "2 holes filled", "2 holes filled in each", "1–2 ... per row". */
function holesLabel(counts) {
  if (!counts.length) return "0 holes filled";
  const low = Math.min(...counts);
  const high = Math.max(...counts);
  const noun = `hole${high === 1 ? "" : "s"} filled`;
  if (counts.length === 1) return `${high} ${noun}`;
  return low === high ? `${high} ${noun} in each` : `${low}–${high} ${noun} per row`;
}

// a hole that a bound ended (max_len, the context, INT_MAX_CHARS) says so after its text
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

export default defineView(TraceView);
