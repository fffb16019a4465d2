// The dataset view (score_many's ScoringTable): one row per prompt, one column per value
// holding the value's probability among the row's values, coloured on the scale every
// view shares; the argmax marked; with gold labels, the gold value per row, the accuracy
// and a confusion table. Headers sort (the `sort` trait); at most `shown_rows` rows are
// drawn at once, so a table of any length stays responsive.
import { LOGPROB_SCALE, legend, paint } from "../colours.js";
import { appendMarkedText, appendText, formatNumber, formatPercent, h } from "../dom.js";
import { View, defineView } from "../view.js";

class Dataset extends View {
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
    this.hover(this.body, ".lmnb-p",
               (cell) => this.describe(Number(cell.dataset.i), Number(cell.dataset.j)),
               (cell) => this.legend.mark(cell ? this.logprob(Number(cell.dataset.i), Number(cell.dataset.j)) : null));
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
      if (literal) appendMarkedText(label, title); else label.textContent = title;
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
    const parts = [`${rows} row${rows === 1 ? "" : "s"} × ${values} value${values === 1 ? "" : "s"}`,
                   `P(value) by ${this.get("agg")}`];
    if (finished < rows) parts.push(`${finished} finished`);
    if (this.hasGold() && finished) parts.push(`accuracy ${formatPercent(correct / finished)} (${correct} of ${finished})`);
    const model = this.get("model_identifier");
    if (model) parts.unshift(`model ${model}`);
    this.status.textContent = parts.join(" · ");
    this.accuracy = finished ? correct / finished : NaN;
    this.drawRows();
    this.drawConfusion();
  }

  toggleSort(key) {
    const [current, direction] = (this.get("sort") || "").split(":");
    // probabilities sort best-first on the first click, the rest in their order
    const first = key.startsWith("v") ? "desc" : "asc";
    const next = current === key ? (direction === "asc" ? "desc" : "asc") : first;
    this.set("sort", `${key}:${next}`);
  }

  sortKey(key) {
    const d = this.columns;
    const label = (index) => (index < 0 ? "" : d.value[index]);
    if (key === "prompt") return (i) => d.prompt[i];
    if (key === "argmax") return (i) => label(d.argmax[i]);
    if (key === "gold") return (i) => label(d.gold[i]);
    if (key.startsWith("v")) {
      const j = Number(key.slice(1));
      return (i) => { const lp = this.logprob(i, j); return Number.isNaN(lp) ? -Infinity : lp; };
    }
    return (i) => i;
  }

  drawRows() {
    const d = this.columns;
    const rows = d.prompt?.length ?? 0;
    const [key, direction] = (this.get("sort") || "").split(":");
    for (const [name, th] of Object.entries(this.headers)) {
      const active = name === key;
      th.setAttribute("aria-sort", active ? (direction === "asc" ? "ascending" : "descending") : "none");
      th.querySelector(".lmnb-sort-mark").textContent = active ? (direction === "asc" ? " ▲" : " ▼") : "";
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
    // two lines are shown: the whole prompt on hover, and in place on a click
    text.title = `${d.prompt[i].length > 2000 ? `…${d.prompt[i].slice(-2000)}` : d.prompt[i]}\n(click to expand)`;
    text.tabIndex = 0;
    text.setAttribute("role", "button");
    text.setAttribute("aria-expanded", "false");
    const toggle = () => {
      const expanded = text.classList.toggle("lmnb-expanded");
      text.setAttribute("aria-expanded", String(expanded));
    };
    text.addEventListener("click", toggle);
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle(); }
    });
    prompt.appendChild(text);
    row.appendChild(prompt);
    for (let j = 0; j < d.value.length; j++) {
      const cell = h("td", "lmnb-col-p");
      const lp = this.logprob(i, j);
      if (Number.isNaN(lp)) {
        cell.textContent = "–";
      } else {
        const box = h("span", "lmnb-p lmnb-num", formatPercent(Math.exp(lp)));
        box.dataset.i = String(i);
        box.dataset.j = String(j);
        paint(box, lp);
        if (d.argmax[i] === j) {
          box.classList.add("lmnb-best");
          box.prepend(h("span", "lmnb-argmax-star", "★ "));
        }
        cell.appendChild(box);
      }
      row.appendChild(cell);
    }
    row.appendChild(this.labelCell(d.argmax[i]));
    if (this.hasGold()) {
      const wrong = d.argmax[i] >= 0 && d.argmax[i] !== d.gold[i];
      const cell = this.labelCell(d.gold[i], d.argmax[i] < 0 ? "" : wrong ? "✗ " : "✓ ");
      cell.classList.add(wrong ? "lmnb-wrong" : "lmnb-right");
      row.classList.toggle("lmnb-row-wrong", wrong);
      row.appendChild(cell);
    }
    return row;
  }

  labelCell(index, prefix = "") {
    const cell = h("td", "lmnb-col-label");
    if (prefix) cell.appendChild(h("span", "lmnb-mark", prefix));
    if (index < 0) cell.appendChild(document.createTextNode("–"));
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
    head.appendChild(h("th", "lmnb-corner", "gold ╲ argmax"));
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
    head.append(value, h("div", "lmnb-tip-stats",
                          `P ${formatPercent(Math.exp(lp))} · logprob ${formatNumber(lp)}`));
    box.appendChild(head);
    const prompt = d.prompt[i];
    const note = h("div", "lmnb-tip-note", `row ${i}: `);
    const code = h("code");
    appendText(code, prompt.length > 160 ? `…${prompt.slice(-159)}` : prompt);
    note.appendChild(code);
    box.appendChild(note);
    return box;
  }
}

export default defineView(Dataset);
