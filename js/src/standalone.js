// The kernel-free renderer behind `to_html()`: finds each embedded widget state
// (a JSON script tag whose data is base64) and draws it with the same views as the
// notebook, over a local stand-in for the widget model.
import heatmap from "./heatmap.js";
import tokenView from "./token_view.js";
import traceView from "./trace_view.js";

const VIEWS = { heatmap, token_view: tokenView, trace_view: traceView };
const STATE_TYPE = "application/vnd.lmql-nb.state+json";

function localModel(state) {
  const listeners = {};
  return {
    get: (name) => state[name],
    set(name, value) {
      state[name] = value;
      for (const listener of listeners[`change:${name}`] ?? []) listener();
    },
    save_changes() {},
    on(event, listener) { (listeners[event] ??= []).push(listener); },
    off(event, listener) {
      listeners[event] = (listeners[event] ?? []).filter((l) => l !== listener);
    },
  };
}

function decodeBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function mountAll() {
  for (const script of document.querySelectorAll(`script[type="${STATE_TYPE}"]`)) {
    const { view, state, data } = JSON.parse(script.textContent);
    const el = document.createElement("div");
    script.after(el);
    VIEWS[view].render({ model: localModel({ ...state, data: decodeBase64(data) }), el });
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
else mountAll();
