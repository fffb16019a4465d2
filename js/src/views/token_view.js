// The token view: generated text as it reads, each token coloured by the model's
// confidence, one row per sequence, the top alternatives on hover. Grows in place while
// generating. Under a constraint a token is coloured by its probability among the
// allowed tokens, and its tooltip lists the allowed choices first.
import { LOGPROB_SCALE, legend, paint } from "../colours.js";
import { appendText, formatAge, formatNumber, h, isBlank, promptTitle, segmented, whitespaceToggle } from "../dom.js";
import { describeToken, logprobShown, prefixSums } from "../tokens.js";
import { View, defineView } from "../view.js";

// the other colourings keep their own scales (the same colours, their own labels)
const METRICS = {
  prob: {
    button: "probability",
    scale: LOGPROB_SCALE,
    value: (view, i) => logprobShown(view.columns, i),
  },
  entropy: {
    button: "entropy",
    scale: {
      domain: [-6, 0],
      label: "entropy of the next-token distribution, in nats (left: uncertain, right: sure)",
      ticks: [[-6, "≥ 6"], [-4, "4"], [-2, "2"], [0, "0 nats"]],
    },
    value: (view, i) => -view.columns.entropy[i],
  },
  rank: {
    button: "rank",
    scale: {
      domain: [-Math.log(100), 0],
      label: "rank of the chosen token among the model's candidates (1 = most likely)",
      ticks: [[-Math.log(100), "≥ 100"], [-Math.log(10), "10"], [-Math.log(3), "3"], [0, "1"]],
    },
    value: (view, i) => (view.columns.rank[i] > 0 ? -Math.log(view.columns.rank[i]) : NaN),
  },
};
METRICS.logprob = METRICS.prob;  // an older name of the same colouring

const BUTTONS = ["prob", "entropy", "rank"].map((key) => [key, METRICS[key].button, METRICS[key].scale.label]);
const PROMPT_TAIL = 60;  // characters of the prompt shown before each completion

class TokenView extends View {
  constructor(model, el) {
    super(model, el, "lmnb-tokens");
    this.rows = [];
    this.markers = false;

    const toolbar = h("div", "lmnb-toolbar");
    this.metricButtons = segmented("Colour by", BUTTONS, this.metric(), (key) => this.set("color_by", key));
    this.whitespace = whitespaceToggle((markers) => { this.markers = markers; this.redraw(); });
    this.legendSlot = h("div", "lmnb-legend-slot");
    this.status = h("div", "lmnb-status");
    this.status.setAttribute("aria-live", "polite");
    toolbar.append(this.metricButtons.element, this.whitespace, this.legendSlot, this.status);
    this.root.appendChild(toolbar);

    this.sequences = h("div", "lmnb-sequences");
    this.root.appendChild(this.sequences);
    this.root.appendChild(this.tooltip.element);  // after the text: never copied with it
    this.hover(this.sequences, ".lmnb-token", (span) => this.describe(Number(span.dataset.i)),
               (span) => this.legend?.mark(span ? this.metricValue(Number(span.dataset.i)) : null));
    this.exactCopy(this.sequences);
    this.collapsed = new Set();  // rows whose branches are folded away
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
    this.timer = setInterval(() => this.tick(), 1000);
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
    // a removed branch shifts the rows after it: draw them afresh
    const parents = d.row_parent ?? new Int32Array(lengths.length).fill(-1);
    if (this.rows.some((row, s) => s >= lengths.length || row.parent !== parents[s]
                                   || row.position !== d.row_position?.[s])) {
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
        if (tail.length > PROMPT_TAIL) prompt.appendChild(h("span", "lmnb-ellipsis", "…"));
        appendText(prompt, tail.slice(-PROMPT_TAIL), { markers: this.markers });
        prompt.title = tail.length > PROMPT_TAIL ? promptTitle(tail) : "the end of the prompt";
        // a chat: the tokens are this role's turn, labelled after the rendered prompt's end
        const role = this.get("role") || "";
        if (role) prompt.appendChild(h("span", "lmnb-trace-role", role));
        const tokens = h("span", "lmnb-sequence-tokens");
        const head = h("div", "lmnb-branch-head");
        head.dataset.copy = "skip";
        head.hidden = true;
        if (parents[s] >= 0) prompt.hidden = true;  // a branch continues its parent's text
        text.append(head, prompt, tokens);
        const totals = h("div", "lmnb-sequence-totals");
        totals.dataset.copy = "skip";
        const tools = h("div", "lmnb-row-tools");
        tools.dataset.copy = "skip";
        element.append(label, text, totals, tools);
        this.sequences.appendChild(element);
        row = this.rows[s] = {
          element, label, head, tokens, totals, tools, rendered: 0,
          parent: parents[s], position: d.row_position?.[s] ?? -1,
        };
      }
      row.label.hidden = !many;
      if (lengths[s] < row.rendered) {
        row.tokens.replaceChildren();
        row.rendered = 0;
      }
      // tokens only ever get appended while generating: draw only the new ones
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
    parents.forEach((p, s) => { if (p >= 0) children[p].push(s); });
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
      this.sequences.appendChild(row.element);  // moves it: DOM order is tree order
      this.updateTools(row, s, children[s].length);
      for (const child of children[s]) visit(child, depth + 1, hidden || this.collapsed.has(s));
    };
    this.rows.forEach((_, s) => { if (!(parents[s] >= 0)) visit(s, 0, false); });
  }

  updateTools(row, s, childCount) {
    const tools = [];
    if (childCount > 0) {
      const folded = this.collapsed.has(s);
      const toggle = h("button", "lmnb-fold", `${folded ? "▸" : "▾"} ${childCount}`);
      toggle.type = "button";
      toggle.dataset.tool = "fold";
      toggle.dataset.row = String(s);
      toggle.title = `${folded ? "show" : "hide"} the ${childCount} branch${childCount === 1 ? "" : "es"} of #${s + 1}`;
      toggle.setAttribute("aria-expanded", String(!folded));
      tools.push(toggle);
    }
    if ((this.columns.row_parent?.[s] ?? -1) >= 0 && this.get("can_branch")) {
      const remove = h("button", "lmnb-remove", "×");
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
    row.head.replaceChildren(`↳ from #${p + 1} at token ${position + 1}: `);
    const was = h("code");
    appendText(was, replaced, { markers: true });
    row.head.append(was, " → ");
    if (d.seq_length[s] > 0) {
      const now = h("code");
      appendText(now, d.text[this.sequenceStart[s]], { markers: true });
      row.head.append(now);
    } else {
      row.head.append("…");
    }
    if (status === "generating") row.head.append(" · generating…");
    else if (status !== "done") row.head.append(h("span", "lmnb-branch-failed", ` · ${status}`));
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
      type: "branch", row: Number(target.dataset.row), position: Number(target.dataset.position),
      token_id: Number(target.dataset.tokenId),
    });
    this.tooltip.hide();
  }

  updateTotals(row, s) {
    const d = this.columns;
    const many = (d.seq_length?.length ?? 0) > 1;
    row.totals.hidden = !many;
    if (!many) return;
    const own = (r) => {
      let sum = 0;
      for (let i = this.sequenceStart[r]; i < this.sequenceStart[r + 1]; i++) sum += d.logprob[i];
      return sum;
    };
    const sum = own(s);
    const n = d.seq_length[s];
    const p = d.row_parent?.[s] ?? -1;
    if (p >= 0) {
      // the whole text's log-probability, shared tokens included, next to its parent's
      const total = d.row_shared_logprob[s] + sum;
      const parentTotal = d.row_shared_logprob[p] + own(p);
      row.totals.textContent = `Σ logprob ${formatNumber(total, 2)} · #${p + 1}: ${formatNumber(parentTotal, 2)}`;
      row.totals.title = `log-probability of the whole text of this branch (the tokens it shares with #${p + 1} included), and of #${p + 1}`;
      return;
    }
    row.totals.textContent = n ? `Σ logprob ${formatNumber(sum, 2)} · perplexity ${formatNumber(Math.exp(-sum / n), 2)}` : "";
    row.totals.title = "sum of the tokens' log-probabilities (the model's own), and exp(−mean)";
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
      parts.push(`${this.get("stage") || "loading the model"}…`);
    } else {
      if (lengths.length > 1) parts.push(`${lengths.length} sequences`);
      parts.push(`${total} token${total === 1 ? "" : "s"}`);
      const elapsed = this.get("elapsed") || 0;
      const age = this.get("cache_age") ?? -1;
      // a remembered result took no time to make: say where it came from, not a speed
      if (age >= 0) parts.push(`from the result cache (computed ${formatAge(age)} ago)`);
      else if (elapsed > 0 && total > 0) parts.push(`${(total / elapsed).toFixed(1)} tokens/s`);
      if (status === "generating") parts.push("generating…");
      else if (status === "interrupted") parts.push(`interrupted: kept ${total} token${total === 1 ? "" : "s"}`);
      const reasons = [...new Set(this.get("finish_reasons") || [])];
      if (status === "done" && reasons.length) parts.push(`finished: ${reasons.join(", ")}`);
    }
    if (status !== this.shownStatus) {
      this.shownStatus = status;
      this.statusSince = Date.now();
    }
    if (status === "loading" || (status === "generating" && total === 0)) {
      parts.push(`${Math.round((Date.now() - this.statusSince) / 1000)} s`);
    }
    const notice = this.get("notice");
    if (notice) parts.push(notice);
    this.status.textContent = parts.join(" · ");
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
    // alternatives become buttons: a click branches from here with that token
    const mark = (selector, start, ids) => {
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
    mark(".lmnb-model-top", this.altStart[i], this.columns.alt_token_id);
    mark(".lmnb-allowed", this.allowedStart[i], this.columns.allowed_token_id);
    if (box.querySelector(".lmnb-branchable")) {
      box.appendChild(h("div", "lmnb-tip-note", "click an alternative to branch from here"));
    }
    return box;
  }
}

export default defineView(TokenView);
