(() => {
  // src/standalone.js
  var STATE_TYPE = "application/vnd.lmql-nb.state+json";
  var VIEW_TYPE = "application/vnd.lmql-nb.view+javascript";
  function localModel(state) {
    const listeners = {};
    return {
      get: (name) => state[name],
      set(name, value) {
        state[name] = value;
        for (const listener of listeners[`change:${name}`] ?? []) listener();
      },
      save_changes() {
      },
      on(event, listener) {
        (listeners[event] ?? (listeners[event] = [])).push(listener);
      },
      off(event, listener) {
        listeners[event] = (listeners[event] ?? []).filter((l) => l !== listener);
      }
    };
  }
  function decodeBase64(text) {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }
  async function mount(container) {
    const { state, data } = JSON.parse(container.querySelector(`script[type="${STATE_TYPE}"]`).textContent);
    const code = container.querySelector(`script[type="${VIEW_TYPE}"]`).textContent;
    const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    try {
      const view = (await import(url)).default;
      const el = document.createElement("div");
      container.appendChild(el);
      view.render({ model: localModel({ ...state, data: decodeBase64(data) }), el });
      container.querySelector(".lmnb-static")?.remove();
    } finally {
      URL.revokeObjectURL(url);
    }
  }
  function mountAll() {
    for (const container of document.querySelectorAll(".lmnb-page")) {
      mount(container).catch((error) => console.error("lmql_nb: cannot draw the view", error));
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
