// The latent pad as a notebook widget, in anywidget's front-end contract (export default { render({ model, el }) }).
// The pad itself is the module vae/browser/pad.py joins, the one the app and the exported page run: it arrives as
// the string PAD_MODULE, which vae/browser/notebook.py writes before this adapter, and is imported from a blob.
// Its payload comes from the "payload" trait; the point it commits and the drawn input's posterior go back as the
// "point", "mu" and "sigma" traits.

let padModule = null; // one import per page, shared by every view of every widget

function loadPad() {
  if (!padModule) {
    const url = URL.createObjectURL(new Blob([PAD_MODULE], { type: "text/javascript" }));
    padModule = import(url).finally(() => URL.revokeObjectURL(url));
  }
  return padModule;
}

// A Bytes trait arrives as a DataView over the message's buffer.
function bytesOf(value) {
  if (value instanceof DataView) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return new Uint8Array(value);
}

async function render({ model, el }) {
  const pad = await loadPad();
  let sent = null; // the posterior last sent, as JSON: resampling eps calls onPosterior with the same one
  const onPosterior = (q) => {
    const text = JSON.stringify(q);
    if (text === sent) return;
    sent = text;
    model.set("mu", q ? q.mu : []);
    model.set("sigma", q ? q.sigma : []);
    model.save_changes();
  };
  // The pad's only other state value, "input", asks a server to encode: the widget's models always have an encoder
  // the page runs.
  const setStateValue = (name, value) => {
    if (name !== "point") return;
    model.set("point", value);
    model.save_changes();
  };
  let cleanup = () => {};
  // A new payload into the same root: the pad swaps the weights in place and keeps its point and drawn input.
  const mount = () => {
    cleanup = pad.default({ data: bytesOf(model.get("payload")), parentElement: el, setStateValue, onPosterior });
  };
  mount();
  model.on("change:payload", mount);
  return () => {
    model.off("change:payload", mount);
    cleanup();
  };
}

export default { render };
