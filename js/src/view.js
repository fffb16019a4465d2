// The base every lmql_nb view builds on: the model's traits, the packed data columns,
// listeners that `destroy` removes, delegated hover with one tooltip that stays inside
// the output area, and scroll-to-end.
//
// How a new view plugs in (one JS file and one Python class; no table to edit):
//  1. js/src/views/<name>.js: `class MyView extends View { constructor(model, el) {
//     super(model, el, "lmnb-my-view"); ... } }` and `export default defineView(MyView)`.
//     Read the data as `this.columns.<column>` (after `this.decode()`), react to traits
//     with `this.onChange("trait", handler)`, add tooltips with `this.hover(...)`.
//     `npm run build` bundles every file of js/src/views/ into lmql_nb/static/<name>.js.
//  2. Python: a subclass of `lmql_nb.notebook.views.base.LmqlWidget` with
//     `view = "<name>"`, `columns = {"<column>": "f8" | "i4" | "u1" | "str", ...}` (the one
//     declaration of its data: `pack` checks what Python sends against it, and reading an
//     undeclared column here throws) and `static_html()`, its rendering without
//     JavaScript. Subclassing registers the view; its output then carries the static HTML
//     beside the live widget, and `to_html()` works.
import { decodeColumns } from "./codec.js";
import { copyText, h } from "./dom.js";

/** The anywidget module of a view class: `export default defineView(MyView)`. */
export function defineView(ViewClass) {
  return {
    render({ model, el }) {
      const view = new ViewClass(model, el);
      return () => view.destroy();
    },
  };
}

export class View {
  constructor(model, el, className) {
    this.model = model;
    this.el = el;
    this.root = h("div", `lmnb ${className}`);
    this.root.dataset.lmnbLive = "";
    this.columns = {};
    this._traitHandlers = [];
    this._domHandlers = [];
    this._frames = new Set();
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
      },
    });
    return this.columns;
  }

  /**
   * Show a tooltip while the pointer is over an element matching `selector` inside
   * `container`: `describe(element)` gives its content (a Node) or null for none;
   * `onHover(element | null)` hears every change (e.g. to mark a legend).
   */
  hover(container, selector, describe, onHover = () => {}) {
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
    // an interactive tooltip (one with buttons) stays while the pointer moves into it
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
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
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
}

const GAP = 4;

/** The rectangle a tooltip may use: the output area, within what is visible of it. */
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
    left: Math.max(box.left, visible.left), right: Math.min(box.right, visible.right),
    top: Math.max(box.top, visible.top), bottom: Math.min(box.bottom, visible.bottom),
  };
  return { box, visible };
}

/** The line box of `anchor` under the pointer (a token can wrap across lines). */
function anchorRect(anchor, event) {
  const rects = [...anchor.getClientRects()];
  if (event && rects.length > 1) {
    const hit = rects.find((r) => event.clientY >= r.top && event.clientY <= r.bottom
                                  && event.clientX >= r.left - 1 && event.clientX <= r.right + 1);
    if (hit) return hit;
  }
  return rects[0] ?? anchor.getBoundingClientRect();
}

/**
 * One floating tooltip per view. It is `position: fixed` (so scrolling containers do not
 * clip it) and placed inside the output area: below the anchor, or above it when there
 * is no room below, moved left to stay inside the right edge. An output area too small
 * for it lends it the visible part of the notebook instead; it never covers its anchor.
 */
export class Tooltip {
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
    // a transformed ancestor makes `fixed` relative to itself: measure where 0,0 lands
    const origin = this.element.getBoundingClientRect();
    const width = origin.width;
    const height = origin.height;
    const fitsIn = (area) => ({
      below: target.bottom + GAP + height <= area.bottom,
      above: target.top - GAP - height >= area.top,
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
    // taller than the room on either side: the roomier side, never over the anchor
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
}
