// The latent pad: a plane over one or two latent dimensions whose point follows the pointer, and the
// decoder's picture of that point, decoded here, in the page, on every pointer move; beside it an input
// to encode (input_panel.js), whose posterior the plane draws (posterior_view.js).
// Mounted by pages/ui/latent_pad.py (st.components.v2); the payload's layout is vae/browser/pad.py's and
// its ops are vae/browser/ops.py's. Nothing is fetched: the weights, codes and thumbnails all come in the
// payload. The last of the files vae/browser/pad.py joins into one module.

const PICTURE_PX = 232; // the decoded picture's largest side on screen, in CSS pixels
const THUMB_PX = 112; // hover thumbnails
const MARGIN = { left: 36, right: 10, top: 10, bottom: 30 }; // around the plot area, CSS pixels
const STRIP_HEIGHT = 120; // a 1-D latent space's pad
const DOT_RADIUS = 2.6;
const HOVER_RADIUS = 8; // how near a dot the pointer must be to pick it, CSS pixels
const KEY_STEP = 0.1; // an arrow key on the pad (0.5 with Shift)
const COMMIT_DELAY_MS = 250; // keyboard moves reach Python once the keys rest
const LATENCY_SAMPLES = 4096;
const CLICK_SLOP_PX = 4; // a press that moves less than this on a dot takes its test image
const POSTERIOR_COLOUR = "#C2185B";
const DIRECTION_COLOUR = "#1E2A33"; // a dark slate: none of the class colours, nor the posterior's magenta
const ARROW_HEAD_PX = 11;
const ALPHA_STEP = 0.01;

// --- the view --------------------------------------------------------------------------------------

const HTML = `<div class="lp-grid">
<div class="lp-encode">
  <div class="lp-head">Encode: an input x</div>
  <div class="lp-input"></div>
  <div class="lp-q"></div>
</div>
<div class="lp-left">
  <div class="latent-pad" tabindex="0" role="application"
       aria-label="Latent plane: drag or click to move the point, arrow keys nudge it">
    <canvas class="lp-layer lp-codes"></canvas><canvas class="lp-layer lp-marks"></canvas>
  </div>
  <div class="lp-sliders"></div>
  <div class="lp-legend"></div>
</div>
<div class="lp-right">
  <canvas class="lp-picture"></canvas>
  <div class="lp-caption"></div>
  <div class="lp-tools"><button type="button" class="lp-save" title="Save the decoded picture as a PNG">Save picture</button>
    <button type="button" class="lp-to-mu" disabled title="Move the point to the drawn input's posterior mean">Point to \u03bc</button></div>
  <div class="lp-error" hidden></div>
  <div class="lp-hover">
    <div class="lp-thumbs">
      <figure><canvas class="lp-original"></canvas><figcaption>test image</figcaption></figure>
      <figure><canvas class="lp-recon"></canvas><figcaption>reconstruction</figcaption></figure>
    </div>
    <div class="lp-hover-text">Hover a dot to see its test image and its reconstruction.</div>
  </div>
</div>
<div class="lp-below"><div class="lp-samples"></div><div class="lp-prior"></div></div>
</div>`;

function sameBytes(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const fmt = (v) => (Math.abs(v) < 0.005 ? "0.00" : v.toFixed(2)).replace("-", "\u2212");

// The corners of each marker but the circle, for a radius of 1 (vae/render/palette.py MARKERS: from the 11th
// class on, colours repeat and the shape tells the classes apart).
const MARKER_CORNERS = {
  square: [[-1, -1], [1, -1], [1, 1], [-1, 1]],
  diamond: [[0, -1.3], [1.3, 0], [0, 1.3], [-1.3, 0]],
  "triangle-up": [[0, -1.3], [1.2, 1], [-1.2, 1]],
};

// A code's dot in its class's marker, r in CSS pixels; a lineTo on an empty path starts it.
function dotPath(ctx, marker, x, y, r) {
  ctx.beginPath();
  const corners = MARKER_CORNERS[marker];
  if (corners) corners.forEach(([cx, cy]) => ctx.lineTo(x + cx * r, y + cy * r));
  else ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.closePath();
}

const median = (values) => {
  values.sort((a, b) => a - b);
  const m = values.length >> 1;
  return values.length % 2 ? values[m] : (values[m - 1] + values[m]) / 2;
};

class Pad {
  constructor(root) {
    this.root = root;
    root.innerHTML = HTML;
    const $ = (s) => root.querySelector(s);
    this.el = {
      pad: $(".latent-pad"), codes: $(".lp-codes"), marks: $(".lp-marks"), sliders: $(".lp-sliders"),
      legend: $(".lp-legend"), picture: $(".lp-picture"), caption: $(".lp-caption"), error: $(".lp-error"),
      original: $(".lp-original"), recon: $(".lp-recon"), hoverText: $(".lp-hover-text"), thumbs: $(".lp-thumbs"),
    };
    this.header = null;
    this.point = null;
    this.dragging = false;
    this.hovered = -1;
    this.versions = 0;
    this.stats = { draws: 0, distinct: 0, lastSum: null, latencies: [], decodeMs: [] };
    this.direction = null; // {name, vector (D,), min, max} from the payload's header, or null
    this.alpha = 0;
    this.memory = (window.__latentPadPoints = window.__latentPadPoints || {});
    this.strokes = { encodes: 0, distinct: 0, lastSum: null, latencies: [], encodeMs: [] };
    this.inputNumber = 0; // inputs sent to a server that encodes them
    this.input = new InputPanel($(".lp-input"), (t, final) => this.inputChanged(t, final));
    this.post = new PosteriorView({ numbers: $(".lp-q"), strip: $(".lp-samples"), prior: $(".lp-prior") },
                                  (t) => this.posteriorChanged(t));
    this.post.penDown = () => this.input.drawing;
    this.bind();
    this.resize = new ResizeObserver(() => this.layout());
    this.resize.observe(this.el.pad);
    root.latentPad = this; // for tests and benchmarks: decodeAt, point, stats, strokes, versions, post, input,
    // alpha, setAlpha, walkCode
  }

  // A new payload: the same one again costs nothing; a new model version swaps the weights in place
  // and keeps the point.
  receive(data, setStateValue) {
    this.setStateValue = setStateValue;
    const { header, text, section } = parsePayload(data);
    if (text === this.headerText) return;
    const newModel = !this.header || this.header.model.key !== header.model.key;
    if (newModel) {
      this.decoder = compileDecoder(header.model, weightsOf(header.model, section("weights")));
      const enc = header.encoder;
      this.encoder = enc ? compileEncoder(enc, weightsOf(enc, section("encoderWeights"))) : null;
      const perPixel = section("logSigma");
      this.input.setShape(header.model.shape);
      this.post.setModel(header.model, this.decoder, header.likelihood,
                         perPixel ? new Float32Array(perPixel.buffer) : null, header.plane.dims);
      this.versions += 1;
    }
    const codes = header.codes;
    this.codes = codes ? new Float32Array(section("codes").buffer) : new Float32Array(0);
    this.labels = codes ? new Int32Array(section("labels").buffer) : new Int32Array(0);
    const sprite = codes && codes.sprite ? section("sprite") : null;
    if (sprite && !sameBytes(sprite, this.spriteBytes)) {
      this.spriteBytes = sprite;
      this.sprite = createImageBitmap(new Blob([sprite], { type: "image/png" })).catch(() => null);
    } else if (!sprite) {
      this.sprite = this.spriteBytes = null;
    }
    // Codes stored with the model come without their images: only the reconstruction is shown.
    this.el.original.parentElement.hidden = !sprite;
    this.el.hoverText.dataset.idle = sprite ? "Hover a dot to see its test image and its reconstruction; click it to encode it."
      : "Hover a dot to see its reconstruction, decoded here (the test images themselves did not come with the model).";
    if (this.hovered === undefined || this.hovered < 0) this.el.hoverText.textContent = this.el.hoverText.dataset.idle;
    const planeChanged = !this.header || this.header.plane.dims.join() !== header.plane.dims.join();
    this.header = header;
    this.headerText = text;
    this.planeKey = header.plane.dims.join(",");
    if (!this.point || planeChanged) this.point = (this.memory[this.planeKey] || header.point).slice();
    this.root.dataset.modelKey = header.model.key;
    this.root.dataset.versions = String(this.versions);
    this.buildSliders(planeChanged);
    this.takeDirection(header.direction, newModel);
    this.buildLegend();
    this.hovered = -1;
    this.post.dims = header.plane.dims;
    this.input.say(header.encoder ? "" : header.encoderNote, false);
    if (newModel) this.encodeInput(null); // the drawn input stays; its posterior follows the new weights
    else if (!this.encoder) this.takeServerPosterior(header.posterior);
    this.layout();
    this.showError(null);
  }

  // --- the encoder's side ---

  // The input changed (a stroke, a file, a test image, Undo, Clear): encode it in this event, or, for an
  // encoder the page cannot run, send it to the server when the stroke ends.
  inputChanged(eventTime, final) {
    if (!this.header) return;
    if (!this.input.filled) {
      this.post.clear();
      return;
    }
    if (this.encoder) this.encodeInput(eventTime);
    else if (final) this.sendInput();
  }

  encodeInput(eventTime) {
    if (!this.input.filled || !this.header) return;
    if (!this.encoder) {
      this.sendInput();
      return;
    }
    const t = performance.now(), x = this.input.pixels(), q = this.encoder(x);
    this.post.set(q.mu, q.logvar, x, eventTime);
    const s = this.strokes;
    s.encodeMs.push(performance.now() - t);
    if (s.encodeMs.length > LATENCY_SAMPLES) s.encodeMs.shift();
  }

  sendInput() {
    if (!this.setStateValue) return;
    this.inputNumber += 1;
    const bytes = this.input.bytes();
    let text = "";
    for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode(...bytes.subarray(i, i + 8192));
    this.setStateValue("input", { input: this.inputNumber, shape: this.header.model.shape, pixels: btoa(text) });
  }

  // The server's answer for the input this page last sent (older answers are dropped).
  takeServerPosterior(posterior) {
    if (!posterior || posterior.input !== this.inputNumber || !this.input.filled) return;
    this.post.set(Float32Array.from(posterior.mu), Float32Array.from(posterior.logvar), this.input.pixels(), null);
  }

  // The posterior moved (or its samples did): the point's picture (its held code follows mu), the plane's
  // marks, the pad's data-mu and data-sigma and the host's onPosterior, in this event.
  posteriorChanged(eventTime) {
    const q = this.post.q, pad = this.el.pad, dims = this.header.plane.dims;
    if (q) {
      pad.dataset.mu = JSON.stringify(dims.map((i) => q.mu[i]));
      pad.dataset.sigma = JSON.stringify(dims.map((i) => q.sigma[i]));
    } else {
      delete pad.dataset.mu;
      delete pad.dataset.sigma;
    }
    if (this.onPosterior) this.onPosterior(q ? { mu: Array.from(q.mu), sigma: Array.from(q.sigma) } : null);
    this.root.querySelector(".lp-to-mu").disabled = !q;
    if (!this.size) return;
    this.update(null);
    if (eventTime != null && q) {
      const s = this.strokes, sum = this.post.reconSum;
      s.encodes += 1;
      if (sum !== s.lastSum) s.distinct += 1;
      s.lastSum = sum;
      s.latencies.push(performance.now() - eventTime);
      if (s.latencies.length > LATENCY_SAMPLES) s.latencies.shift();
    }
  }

  get oneD() { return this.header.plane.dims.length === 1; }

  // The full code at the pad's point: the plane's dimensions from the point, the others from base, or from the
  // drawn input's mu once there is one.
  code(point = this.point) {
    const q = this.post.q, z = Float32Array.from(q ? q.mu : this.header.plane.base);
    this.header.plane.dims.forEach((d, i) => { z[d] = point[i]; });
    return z;
  }

  decodeAt(z) { return Array.from(this.decoder(Float32Array.from(z))); }

  // The code the picture shows: code() walked alpha along the payload's direction, code() + alpha v.
  walkCode() {
    const z = this.code();
    if (this.direction) this.direction.vector.forEach((v, i) => { z[i] += this.alpha * v; });
    return z;
  }

  // --- the direction ---

  // The payload's direction (or none): a new model version or another vector walks back to alpha = 0; the
  // same direction keeps alpha, within its new range.
  takeDirection(sent, newModel) {
    const old = this.direction;
    this.direction = sent ? { name: sent.name, vector: Float32Array.from(sent.vector), min: sent.alpha[0],
                              max: sent.alpha[1] } : null;
    const same = old && this.direction && sameBytes(old.vector, this.direction.vector);
    const d = this.direction;
    this.alpha = same && !newModel ? Math.max(d.min, Math.min(d.max, this.alpha)) : 0;
    this.buildAlpha();
    if (d) this.root.dataset.direction = d.name;
    else delete this.root.dataset.direction;
  }

  // The alpha slider's row under the plane's sliders, made once and dropped when a payload has no direction.
  buildAlpha() {
    const d = this.direction;
    if (!d) {
      if (this.alphaRow) this.alphaRow.row.remove();
      this.alphaRow = null;
      delete this.root.dataset.alpha;
      return;
    }
    if (!this.alphaRow) {
      const row = document.createElement("label");
      row.className = "lp-slider lp-alpha";
      row.innerHTML = `<span class="lp-name"></span><input type="range" class="lp-alpha-range"><output></output>`;
      const input = row.querySelector("input");
      input.addEventListener("input", (e) => this.setAlpha(Number(input.value), e.timeStamp));
      input.addEventListener("change", () => this.commitSoon());
      this.el.sliders.after(row);
      this.alphaRow = { row, input, name: row.querySelector(".lp-name"), output: row.querySelector("output") };
    }
    const { input, name } = this.alphaRow;
    name.textContent = `\u03b1 along ${d.name}`;
    input.setAttribute("aria-label", `\u03b1: how far the picture's code walks along ${d.name}`);
    Object.assign(input, { min: String(d.min), max: String(d.max), step: String(ALPHA_STEP) });
  }

  // Walks to alpha (clamped to the slider's range) and shows it: one decode, in this call. eventTime: the
  // input event's, for the latency stats.
  setAlpha(a, eventTime = null) {
    const d = this.direction;
    if (!d || !Number.isFinite(a)) return;
    this.alpha = Math.max(d.min, Math.min(d.max, a));
    if (this.size) this.update(eventTime);
  }

  syncAlpha() {
    if (!this.alphaRow) return;
    const { input, output } = this.alphaRow;
    if (Number(input.value) !== this.alpha) input.value = String(this.alpha);
    output.textContent = fmt(this.alpha);
    this.root.dataset.alpha = String(this.alpha);
  }

  // --- drawing ---

  layout() {
    if (!this.header) return;
    const pad = this.el.pad;
    pad.classList.toggle("lp-strip", this.oneD);
    const css = pad.getBoundingClientRect();
    if (css.width < 10) return; // not laid out yet: the resize observer calls again
    const dpr = window.devicePixelRatio || 1;
    this.size = { w: css.width, h: css.height };
    for (const canvas of [this.el.codes, this.el.marks]) {
      canvas.width = Math.round(css.width * dpr);
      canvas.height = Math.round(css.height * dpr);
      canvas.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
    }
    const [c, h, w] = this.header.model.shape;
    const scale = Math.max(1, Math.floor(PICTURE_PX / Math.max(h, w)));
    const picture = this.el.picture;
    if (picture.width !== w || picture.height !== h) {
      picture.width = w;
      picture.height = h;
      this.image = null;
    }
    picture.style.width = `${w * scale}px`;
    picture.style.height = `${h * scale}px`;
    for (const thumb of [this.el.original, this.el.recon]) {
      thumb.width = w;
      thumb.height = h;
      const s = Math.max(1, Math.floor(THUMB_PX / Math.max(h, w)));
      thumb.style.width = `${w * s}px`;
      thumb.style.height = `${h * s}px`;
    }
    this.channels = c;
    this.fontScale = this.colours().scale;
    this.drawCodes();
    this.update(null);
  }

  // Plot area in CSS pixels and the latent range it spans.
  frame() {
    const { w, h } = this.size, lim = this.header.plane.limit;
    const m = this.fontScale || 1; // larger tick labels need wider margins
    const x0 = MARGIN.left * m, x1 = w - MARGIN.right, y0 = MARGIN.top, y1 = h - MARGIN.bottom * m;
    return { x0, x1, y0, y1, lim, sx: (x1 - x0) / (2 * lim), sy: (y1 - y0) / (2 * lim) };
  }

  toPixels(zx, zy, f = this.frame()) {
    return [f.x0 + (zx + f.lim) * f.sx, this.oneD ? (f.y0 + f.y1) / 2 : f.y1 - (zy + f.lim) * f.sy];
  }

  colours() {
    const style = getComputedStyle(this.root);
    const text = style.getPropertyValue("--st-text-color").trim() || "#31333F";
    // --lp-font-scale: the app's presentation mode sets it, for a projector (pages/ui/presentation.py).
    const scale = Number(style.getPropertyValue("--lp-font-scale")) || 1;
    return { text, font: style.fontFamily || "sans-serif", scale };
  }

  drawCodes() {
    const ctx = this.el.codes.getContext("2d"), f = this.frame(), { w, h } = this.size;
    const { text, font, scale } = this.colours();
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#FFFFFF";
    ctx.fillRect(f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0);
    const ticks = [];
    const step = f.sx >= 28 ? 1 : 2;
    for (let t = -Math.floor(f.lim); t <= f.lim; t += 1) if (t % step === 0) ticks.push(t);
    ctx.lineWidth = 1;
    ctx.font = `${14 * scale}px ${font}`;
    ctx.fillStyle = text;
    ctx.globalAlpha = 1;
    for (const t of ticks) {
      const [px, py] = this.toPixels(t, t, f);
      ctx.strokeStyle = t === 0 ? "#C3C8D0" : "#EEF0F4";
      ctx.beginPath(); ctx.moveTo(px + 0.5, f.y0); ctx.lineTo(px + 0.5, f.y1); ctx.stroke();
      ctx.textAlign = "center"; ctx.textBaseline = "top";
      ctx.fillText(fmt(t).replace(/\.00$/, ""), px, f.y1 + 6);
      if (!this.oneD) {
        ctx.beginPath(); ctx.moveTo(f.x0, py + 0.5); ctx.lineTo(f.x1, py + 0.5); ctx.stroke();
        ctx.textAlign = "right"; ctx.textBaseline = "middle";
        ctx.fillText(fmt(t).replace(/\.00$/, ""), f.x0 - 6, py);
      }
    }
    // The codes, by label; the pixel positions are kept for hovering.
    const n = this.labels.length, d = this.header.model.latentDim, [dx, dy] = this.header.plane.dims;
    const classes = this.header.classes;
    this.dots = new Float32Array(2 * n);
    ctx.globalAlpha = 0.82;
    for (let k = 0; k < n; k++) {
      const zx = this.codes[k * d + dx];
      const zy = this.oneD ? 0 : this.codes[k * d + dy];
      let [px, py] = this.toPixels(zx, zy, f);
      if (this.oneD) py += ((((k * 2654435761) >>> 0) % 1000) / 1000 - 0.5) * (f.y1 - f.y0) * 0.8; // jitter
      const inside = Math.abs(zx) <= f.lim && Math.abs(zy) <= f.lim;
      this.dots[2 * k] = inside ? px : NaN;
      this.dots[2 * k + 1] = py;
      if (!inside) continue;
      const cls = classes[this.labels[k]] || { color: "#7F7F7F" };
      ctx.fillStyle = cls.color;
      dotPath(ctx, cls.marker, px, py, DOT_RADIUS); ctx.fill();
    }
    ctx.globalAlpha = 1;
    // The prior's 1 and 2 sigma contours: circles, or marks on a strip.
    ctx.strokeStyle = "#3A3D45"; ctx.lineWidth = 1.5; ctx.setLineDash([5, 4]);
    for (const s of [1, 2]) {
      ctx.beginPath();
      if (this.oneD) {
        for (const sign of [-1, 1]) {
          const [px] = this.toPixels(sign * s, 0, f);
          ctx.moveTo(px, f.y0); ctx.lineTo(px, f.y1);
        }
      } else {
        const [cx, cy] = this.toPixels(0, 0, f);
        ctx.ellipse(cx, cy, s * f.sx, s * f.sy, 0, 0, 2 * Math.PI);
      }
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.font = `${14 * scale}px ${font}`; ctx.fillStyle = "#3A3D45"; ctx.textAlign = "left"; ctx.textBaseline = "bottom";
    for (const s of [1, 2]) {
      const [px, py] = this.oneD ? this.toPixels(s, 0, f) : this.toPixels(s * Math.SQRT1_2, s * Math.SQRT1_2, f);
      ctx.fillText(`${s}\u03c3`, px + 3, this.oneD ? f.y0 + 14 : py - 2);
    }
    ctx.strokeStyle = "#A9AFB9"; ctx.lineWidth = 1;
    ctx.strokeRect(f.x0 + 0.5, f.y0 + 0.5, f.x1 - f.x0 - 1, f.y1 - f.y0 - 1);
    // Axis names at the ends of the axes.
    const names = this.header.plane.names;
    ctx.font = `bold ${14 * scale}px ${font}`; ctx.fillStyle = "#31333F"; // inside the white plot area, whatever the theme
    ctx.textAlign = "right"; ctx.textBaseline = "bottom";
    ctx.fillText(`${names[0]} \u2192`, f.x1 - 4, f.y1 - 4);
    if (!this.oneD) {
      ctx.textAlign = "left"; ctx.textBaseline = "top";
      ctx.fillText(`\u2191 ${names[1]}`, f.x0 + 4, f.y0 + 4);
    }
    this.nameSpots = this.showNames === false ? [] : this.drawClassNames(ctx, f, font, scale);
  }

  // Each class's name at the median of its codes in the plane (as the scatter's, vae/render/figures.py
  // class_centres), dark on a white label outlined in the class's colour: the centre is where that colour is
  // densest, so a name in the colour itself would vanish there. A centre outside the plane is left out.
  // Returns [{label, name, x, y}] in CSS pixels, for tests.
  drawClassNames(ctx, f, font, scale) {
    const d = this.header.model.latentDim, [dx, dy] = this.header.plane.dims;
    const byClass = new Map();
    for (let k = 0; k < this.labels.length; k++) {
      if (!byClass.has(this.labels[k])) byClass.set(this.labels[k], [[], []]);
      const [xs, ys] = byClass.get(this.labels[k]);
      xs.push(this.codes[k * d + dx]);
      ys.push(this.oneD ? 0 : this.codes[k * d + dy]);
    }
    const size = 16 * scale, pad = 4 * scale;
    ctx.font = `bold ${size}px ${font}`; ctx.textAlign = "center"; ctx.textBaseline = "middle"; ctx.lineWidth = 2;
    const spots = [];
    for (const [label, [xs, ys]] of [...byClass].sort((a, b) => a[0] - b[0])) {
      const zx = median(xs), zy = median(ys);
      if (Math.abs(zx) > f.lim || Math.abs(zy) > f.lim) continue;
      const cls = this.header.classes[label] || { name: String(label), color: "#7F7F7F" };
      const [x, y] = this.toPixels(zx, zy, f);
      const w = ctx.measureText(cls.name).width + 2 * pad, h = size + pad;
      ctx.beginPath(); ctx.roundRect(x - w / 2, y - h / 2, w, h, pad);
      ctx.fillStyle = "rgba(255, 255, 255, 0.88)"; ctx.fill();
      ctx.strokeStyle = cls.color; ctx.stroke();
      ctx.fillStyle = "#31333F"; ctx.fillText(cls.name, x, y + 1);
      spots.push({ label, name: cls.name, x, y });
    }
    return spots;
  }

  drawMarks() {
    const ctx = this.el.marks.getContext("2d"), f = this.frame(), { w, h } = this.size;
    ctx.clearRect(0, 0, w, h);
    if (this.hovered >= 0) {
      const hx = this.dots[2 * this.hovered], hy = this.dots[2 * this.hovered + 1];
      ctx.strokeStyle = "#111"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(hx, hy, DOT_RADIUS + 3, 0, 2 * Math.PI); ctx.stroke();
    }
    if (this.post.q) this.drawPosterior(ctx, f);
    const [px, py] = this.toPixels(this.point[0], this.oneD ? 0 : this.point[1], f);
    this.arrow = this.direction ? this.drawDirection(ctx, f) : null; // its ends in CSS pixels, for tests
    ctx.strokeStyle = "rgba(0, 0, 0, 0.28)"; ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(px, f.y0); ctx.lineTo(px, f.y1);
    if (!this.oneD) { ctx.moveTo(f.x0, py); ctx.lineTo(f.x1, py); }
    ctx.stroke();
    for (const [r, fill] of [[9, "#000"], [7.5, "#FFF"], [3.4, "#000"]]) {
      ctx.fillStyle = fill;
      ctx.beginPath(); ctx.arc(px, py, r, 0, 2 * Math.PI); ctx.fill();
    }
  }

  // The direction v on the plane: an arrow from the point to point + v's projection on the plane's dimensions,
  // named at its head, and a ring at point + alpha v (the walked code the picture shows). A white halo under
  // each keeps them legible over the codes' dots.
  drawDirection(ctx, f) {
    const { vector, name } = this.direction, [dx, dy] = this.header.plane.dims;
    const step = (a) => [this.point[0] + a * vector[dx], this.oneD ? 0 : this.point[1] + a * vector[dy]];
    const [x0, y0] = this.toPixels(...step(0), f), [x1, y1] = this.toPixels(...step(1), f);
    const [rx, ry] = this.toPixels(...step(this.alpha), f);
    const length = Math.hypot(x1 - x0, y1 - y0), ux = (x1 - x0) / length, uy = (y1 - y0) / length;
    ctx.save();
    ctx.beginPath(); ctx.rect(f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0); ctx.clip();
    ctx.lineCap = "round"; ctx.lineJoin = "round";
    if (length > 1) {
      const head = Math.min(ARROW_HEAD_PX, length * 0.6);
      const bx = x1 - ux * head, by = y1 - uy * head;
      const wing = [[bx - uy * head * 0.5, by + ux * head * 0.5], [bx + uy * head * 0.5, by - ux * head * 0.5]];
      const arrow = () => {
        ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(bx, by); ctx.stroke();
        ctx.beginPath(); ctx.moveTo(x1, y1); ctx.lineTo(...wing[0]); ctx.lineTo(...wing[1]); ctx.closePath();
      };
      ctx.strokeStyle = "#FFF"; ctx.fillStyle = "#FFF"; ctx.lineWidth = 7; arrow(); ctx.fill(); ctx.stroke();
      ctx.strokeStyle = DIRECTION_COLOUR; ctx.fillStyle = DIRECTION_COLOUR; ctx.lineWidth = 3; arrow(); ctx.fill();
      this.drawDirectionName(ctx, f, name, x1, y1, ux, uy);
    }
    ctx.beginPath(); ctx.arc(rx, ry, 6.5, 0, 2 * Math.PI);
    ctx.fillStyle = "rgba(255, 255, 255, 0.85)"; ctx.fill();
    ctx.strokeStyle = "#FFF"; ctx.lineWidth = 5; ctx.stroke();
    ctx.strokeStyle = DIRECTION_COLOUR; ctx.lineWidth = 2.5; ctx.stroke();
    ctx.restore();
    return { from: [x0, y0], to: [x1, y1], walked: [rx, ry] };
  }

  // The direction's name in a dark pill just past the arrow's head (x, y), on the side (ux, uy) it points to,
  // clear of a class name drawn at the head (a direction between two classes ends at one), kept inside the plot.
  drawDirectionName(ctx, f, name, x, y, ux, uy) {
    const { font, scale } = this.colours(), size = 14 * scale, pad = 5 * scale;
    ctx.font = `bold ${size}px ${font}`; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    const w = ctx.measureText(name).width + 2 * pad, h = size + pad, gap = 18;
    const side = Math.abs(ux) >= Math.abs(uy);
    let cx = x + ux * gap + (side ? Math.sign(ux) * w / 2 : 0), cy = y + uy * gap + (side ? 0 : Math.sign(uy) * h / 2);
    cx = Math.max(f.x0 + 2 + w / 2, Math.min(f.x1 - 2 - w / 2, cx));
    cy = Math.max(f.y0 + 2 + h / 2, Math.min(f.y1 - 2 - h / 2, cy));
    ctx.beginPath(); ctx.roundRect(cx - w / 2, cy - h / 2, w, h, h / 2);
    ctx.fillStyle = DIRECTION_COLOUR; ctx.fill();
    ctx.strokeStyle = "#FFF"; ctx.lineWidth = 1.5; ctx.stroke();
    ctx.fillStyle = "#FFF"; ctx.fillText(name, cx, cy + 1);
  }

  // q(z|x) on the plane: mu, the 1 sigma and 2 sigma ellipses (axis-aligned: the posterior is a diagonal
  // Gaussian), or intervals on a strip, and the samples z, sample 1 ringed.
  drawPosterior(ctx, f) {
    const { mu, sigma } = this.post.q, [dx, dy] = this.header.plane.dims, d = mu.length;
    const [cx, cy] = this.toPixels(mu[dx], this.oneD ? 0 : mu[dy], f);
    ctx.save();
    ctx.beginPath(); ctx.rect(f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0); ctx.clip();
    ctx.strokeStyle = POSTERIOR_COLOUR; ctx.fillStyle = POSTERIOR_COLOUR;
    for (const [s, alpha, width] of [[2, 0.10, 1.5], [1, 0.16, 2.5]]) {
      ctx.beginPath();
      if (this.oneD) {
        const band = (f.y1 - f.y0) * (s === 1 ? 0.36 : 0.5);
        ctx.rect(cx - s * sigma[dx] * f.sx, cy - band / 2, 2 * s * sigma[dx] * f.sx, band);
      } else {
        ctx.ellipse(cx, cy, Math.max(0.5, s * sigma[dx] * f.sx), Math.max(0.5, s * sigma[dy] * f.sy), 0, 0, 2 * Math.PI);
      }
      ctx.globalAlpha = alpha; ctx.fill();
      ctx.globalAlpha = 1; ctx.lineWidth = width; ctx.stroke();
    }
    const z = this.post.z;
    for (let k = z.length / d - 1; k >= 0; k--) {
      const [sx, sy] = this.toPixels(z[k * d + dx], this.oneD ? 0 : z[k * d + dy], f);
      ctx.beginPath(); ctx.arc(sx, sy, k === 0 ? 4.5 : 3.2, 0, 2 * Math.PI);
      ctx.fillStyle = "#FFF"; ctx.fill();
      ctx.lineWidth = k === 0 ? 2.5 : 1.5; ctx.stroke();
    }
    ctx.beginPath(); ctx.moveTo(cx - 7, cy); ctx.lineTo(cx + 7, cy); ctx.moveTo(cx, cy - 7); ctx.lineTo(cx, cy + 7);
    ctx.lineWidth = 3; ctx.stroke();
    ctx.fillStyle = POSTERIOR_COLOUR;
    const { font, scale } = this.colours();
    ctx.font = `bold ${15 * scale}px ${font}`; ctx.textAlign = "left"; ctx.textBaseline = "bottom";
    ctx.fillText("q(z|x)", cx + 6 + (this.oneD ? 0 : sigma[dx] * f.sx * 0.72), cy - 4 - (this.oneD ? 0 : sigma[dy] * f.sy * 0.72));
    ctx.restore();
  }

  drawPicture() {
    const canvas = this.el.picture, ctx = canvas.getContext("2d");
    if (!this.image) this.image = ctx.createImageData(canvas.width, canvas.height);
    const t = performance.now();
    const pixels = this.decoder(this.walkCode());
    const sum = paint(this.image, pixels, this.channels);
    ctx.putImageData(this.image, 0, 0);
    const s = this.stats;
    s.decodeMs.push(performance.now() - t);
    if (s.decodeMs.length > LATENCY_SAMPLES) s.decodeMs.shift();
    s.draws += 1;
    if (sum !== s.lastSum) s.distinct += 1;
    s.lastSum = sum;
  }

  // The point moved (or the model did): everything that shows it, in this frame.
  update(eventTime) {
    try {
      this.drawPicture();
    } catch (e) {
      this.showError(e);
    }
    this.drawMarks();
    this.syncSliders();
    this.syncAlpha();
    const code = this.code(), d = code.length;
    const shown = `z = (${Array.from(code.slice(0, 6), fmt).join(", ")}${d > 6 ? ", \u2026" : ""})`;
    this.el.caption.textContent = this.direction
      ? `decode(z + \u03b1\u00b7v) at \u03b1 = ${fmt(this.alpha)}\n${shown}` : `decode(z) at ${shown}`;
    if (eventTime != null) {
      const lat = this.stats.latencies;
      lat.push(performance.now() - eventTime);
      if (lat.length > LATENCY_SAMPLES) lat.shift();
    }
  }

  showError(error) {
    const box = this.el.error;
    box.hidden = !error;
    box.textContent = error ? `The picture could not be decoded in this browser (${error.message}): reload the page to try again.` : "";
    this.root.dataset.error = error ? error.message : "";
  }

  // --- controls ---

  buildSliders(rebuild) {
    const plane = this.header.plane;
    if (rebuild || !this.sliders) {
      this.el.sliders.textContent = "";
      this.sliders = plane.names.map((name, i) => {
        const row = document.createElement("label");
        row.className = "lp-slider";
        row.innerHTML = `<span class="lp-name"></span><input type="range"><output></output>`;
        row.querySelector(".lp-name").textContent = name;
        const input = row.querySelector("input");
        input.setAttribute("aria-label", `${name}: position of the point along ${name}`);
        input.addEventListener("input", (e) => {
          this.point[i] = Number(input.value);
          this.moved(e.timeStamp);
        });
        input.addEventListener("change", () => this.commitSoon());
        this.el.sliders.appendChild(row);
        return { input, output: row.querySelector("output") };
      });
    }
    for (const { input } of this.sliders) {
      input.min = String(-plane.limit);
      input.max = String(plane.limit);
      input.step = "0.05";
    }
  }

  syncSliders() {
    this.sliders.forEach(({ input, output }, i) => {
      if (Number(input.value) !== this.point[i]) input.value = String(this.point[i]);
      output.textContent = fmt(this.point[i]);
    });
  }

  buildLegend() {
    const present = new Set(this.labels);
    const legend = this.el.legend;
    legend.textContent = "";
    this.header.classes.forEach((c, i) => {
      if (!present.has(i)) return;
      const item = document.createElement("span");
      item.className = "lp-key";
      const dot = document.createElement("i");
      dot.style.background = c.color;
      dot.dataset.marker = c.marker || "circle";
      item.append(dot, document.createTextNode(c.name));
      legend.appendChild(item);
    });
    // The names on the clusters, on unless unticked; the choice outlives new payloads.
    const toggle = document.createElement("label");
    toggle.className = "lp-names-toggle";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = this.showNames !== false;
    box.addEventListener("change", () => { this.showNames = box.checked; this.drawCodes(); });
    toggle.append(box, document.createTextNode("names on the clusters"));
    legend.appendChild(toggle);
  }

  moved(eventTime) {
    this.memory[this.planeKey] = this.point.slice();
    this.update(eventTime);
  }

  // The point to the drawn input's posterior mean on the plane (the held dimensions follow mu already): a walk
  // along a direction then starts from the input's code.
  pointToMu(eventTime) {
    const q = this.post.q;
    if (!q || !this.header) return;
    const lim = this.header.plane.limit;
    this.point = this.header.plane.dims.map((i) => Math.max(-lim, Math.min(lim, q.mu[i])));
    this.moved(eventTime);
    this.commitSoon();
  }

  pointerTo(event) {
    const f = this.frame(), r = this.el.pad.getBoundingClientRect();
    const clamp = (v) => Math.max(-f.lim, Math.min(f.lim, v));
    const zx = clamp((event.clientX - r.left - f.x0) / f.sx - f.lim);
    const zy = clamp((f.y1 - (event.clientY - r.top)) / f.sy - f.lim);
    this.point = this.oneD ? [zx] : [zx, zy];
    this.moved(event.timeStamp);
  }

  // The decoded picture enlarged pixel for pixel, as on screen, as a PNG: resolves to a Blob.
  pictureBlob() {
    const [, h, w] = this.header.model.shape, scale = Math.max(1, Math.floor(PICTURE_PX / Math.max(h, w)));
    const out = document.createElement("canvas");
    out.width = w * scale;
    out.height = h * scale;
    const ctx = out.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.el.picture, 0, 0, out.width, out.height);
    return new Promise((resolve) => out.toBlob(resolve, "image/png"));
  }

  // Saves it under a name that gives the point: decoded_z1_0.50_z2_-1.25.png.
  async savePicture() {
    const blob = await this.pictureBlob(), link = document.createElement("a"), dims = this.header.plane.dims;
    const where = dims.map((d, i) => `z${d + 1}_${this.point[i].toFixed(2)}`).join("_")
      + (this.direction ? `_alpha_${this.alpha.toFixed(2)}` : "");
    link.href = URL.createObjectURL(blob);
    link.download = `decoded_${where}.png`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }

  bind() {
    this.root.querySelector(".lp-save").addEventListener("click", () => { if (this.header) this.savePicture(); });
    this.root.querySelector(".lp-to-mu").addEventListener("click", (e) => this.pointToMu(e.timeStamp));
    const pad = this.el.pad;
    pad.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || !this.header) return;
      pad.setPointerCapture(e.pointerId);
      pad.classList.add("lp-pointer"); // focused for the arrow keys, without the keyboard's focus ring
      pad.focus({ preventScroll: true });
      this.dragging = true;
      this.pressed = { dot: this.nearestDot(e), x: e.clientX, y: e.clientY };
      this.hovered = -1;
      pad.classList.add("lp-dragging");
      this.pointerTo(e);
      e.preventDefault();
    });
    pad.addEventListener("pointermove", (e) => {
      if (!this.header) return;
      if (this.dragging) this.pointerTo(e);
      else this.hoverAt(e);
    });
    const end = () => {
      if (!this.dragging) return;
      this.dragging = false;
      pad.classList.remove("lp-dragging");
      this.commit();
    };
    pad.addEventListener("pointerup", (e) => {
      const p = this.dragging && this.pressed;
      end();
      if (p && p.dot >= 0 && Math.hypot(e.clientX - p.x, e.clientY - p.y) < CLICK_SLOP_PX) this.takeTestImage(p.dot);
    });
    pad.addEventListener("pointercancel", end);
    pad.addEventListener("lostpointercapture", end);
    pad.addEventListener("pointerleave", () => {
      if (!this.dragging && this.hovered >= 0) { this.hovered = -1; this.drawMarks(); }
    });
    pad.addEventListener("keydown", (e) => {
      pad.classList.remove("lp-pointer");
      const moves = { ArrowRight: [0, 1], ArrowLeft: [0, -1], ArrowUp: [1, 1], ArrowDown: [1, -1] };
      const move = this.header && moves[e.key];
      if (!move || (this.oneD && move[0] === 1)) return;
      const lim = this.header.plane.limit, step = e.shiftKey ? 5 * KEY_STEP : KEY_STEP;
      this.point[move[0]] = Math.max(-lim, Math.min(lim, Math.round((this.point[move[0]] + move[1] * step) * 100) / 100));
      this.moved(e.timeStamp);
      this.commitSoon();
      e.preventDefault();
    });
  }

  // The test code whose dot is nearest the pointer, within HOVER_RADIUS, or -1.
  nearestDot(event) {
    if (!this.dots || !this.dots.length) return -1;
    const r = this.el.pad.getBoundingClientRect(), x = event.clientX - r.left, y = event.clientY - r.top;
    let best = -1, bestD = HOVER_RADIUS * HOVER_RADIUS;
    for (let k = 0; k < this.dots.length / 2; k++) {
      const dx = this.dots[2 * k] - x, dy = this.dots[2 * k + 1] - y, dd = dx * dx + dy * dy;
      if (dd < bestD) { bestD = dd; best = k; }
    }
    return best;
  }

  // Test image k into the input panel, pixel for pixel from the thumbnails (where the images are here).
  takeTestImage(k) {
    if (!this.sprite) return;
    const columns = this.header.codes.sprite.columns, [, h, w] = this.header.model.shape;
    this.sprite.then((bitmap) => {
      if (bitmap) this.input.loadCell(bitmap, (k % columns) * w, Math.floor(k / columns) * h);
    });
  }

  hoverAt(event) {
    const best = this.nearestDot(event);
    if (best === this.hovered) return;
    this.hovered = best;
    this.drawMarks();
    if (best >= 0) this.showCode(best);
  }

  // The hovered test code: its image (from the thumbnails), its reconstruction decode(mu), decoded
  // here from its full code, its label and its code.
  showCode(k) {
    const d = this.header.model.latentDim, mu = this.codes.subarray(k * d, (k + 1) * d);
    const recon = this.el.recon, rctx = recon.getContext("2d");
    const image = rctx.createImageData(recon.width, recon.height);
    paint(image, this.decoder(mu), this.channels);
    rctx.putImageData(image, 0, 0);
    const original = this.el.original, octx = original.getContext("2d");
    octx.clearRect(0, 0, original.width, original.height);
    if (this.sprite) {
      const columns = this.header.codes.sprite.columns, w = original.width, h = original.height;
      this.sprite.then((bitmap) => {
        if (!bitmap || this.hovered !== k) return;
        octx.drawImage(bitmap, (k % columns) * w, Math.floor(k / columns) * h, w, h, 0, 0, w, h);
      });
    }
    this.el.thumbs.classList.add("lp-shown");
    const cls = this.header.classes[this.labels[k]] || { name: String(this.labels[k]), color: "#7F7F7F" };
    const text = this.el.hoverText;
    text.textContent = "";
    const dot = document.createElement("i");
    dot.style.background = cls.color;
    const name = document.createElement("b");
    name.textContent = cls.name;
    const shown = Array.from(mu.slice(0, 6), fmt).join(", ") + (d > 6 ? ", \u2026" : "");
    text.append(dot, name, document.createTextNode(` \u00b7 test image #${k} \u00b7 \u03bc = (${shown})`
                                                   + (this.sprite ? " \u00b7 click to encode it" : "")));
    this.root.dataset.hovered = String(k);
  }

  commitSoon() {
    clearTimeout(this.commitTimer);
    this.commitTimer = setTimeout(() => this.commit(), COMMIT_DELAY_MS);
  }

  // The point goes back to Python (the component's state), which reruns the page's fragment.
  commit() {
    clearTimeout(this.commitTimer);
    const value = { dims: this.header.plane.dims, z: this.point.map((v) => Math.round(v * 1e4) / 1e4),
                    code: Array.from(this.code(), (v) => Math.round(v * 1e4) / 1e4) };
    if (this.direction) value.alpha = Math.round(this.alpha * 1e4) / 1e4;
    const text = JSON.stringify(value);
    if (text === this.committed || !this.setStateValue) return;
    this.committed = text;
    this.setStateValue("point", value);
  }

  destroy() {
    this.input.destroy();
    this.post.destroy();
    this.resize.disconnect();
    clearTimeout(this.commitTimer);
  }
}

// component: {data, parentElement, setStateValue} (Streamlit's v2 contract), and optionally onPosterior({mu, sigma}
// over every dimension, or null once the input is cleared), called on every encode: for a host that wants the drawn
// input's posterior (the notebook widget). Streamlit has none: a state value per stroke would rerun the page each time.
export default function (component) {
  const { data, parentElement, setStateValue, onPosterior } = component;
  let root = parentElement.querySelector(":scope > .lp-root");
  if (!root) {
    root = document.createElement("div");
    root.className = "lp-root";
    parentElement.appendChild(root);
    new Pad(root);
  }
  const pad = root.latentPad;
  pad.onPosterior = onPosterior || null;
  try {
    pad.receive(data, setStateValue);
  } catch (e) {
    pad.showError(e);
  }
  // Streamlit may call this before each new payload as well as on unmount: the pad stops only once its root
  // has left the page.
  return () => setTimeout(() => { if (!root.isConnected) pad.destroy(); }, 0);
}

// The decoded manifold of a payload's model: an n x n grid of codes over [-radius, radius] on the plane's two
// dimensions (the others at the plane's base), top row the largest z2, drawn pixel for pixel into `canvas`
// and shown about `px` CSS pixels wide. For hosts with no server to draw it (an exported page).
export function drawManifold(canvas, data, { n = 16, radius = 3, px = 560 } = {}) {
  const { header, section } = parsePayload(data);
  const model = header.model, decode = compileDecoder(model, weightsOf(model, section("weights")));
  const [c, h, w] = model.shape, dims = header.plane.dims, ctx = canvas.getContext("2d");
  const rows = dims.length > 1 ? n : 1;
  canvas.width = n * w;
  canvas.height = rows * h;
  const scale = Math.max(1, Math.floor(px / canvas.width));
  canvas.style.width = `${canvas.width * scale}px`;
  canvas.style.height = `${canvas.height * scale}px`;
  const image = ctx.createImageData(w, h), z = Float32Array.from(header.plane.base);
  const at = (k, count) => (count === 1 ? 0 : -radius + (2 * radius * k) / (count - 1));
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < n; k++) {
      z[dims[0]] = at(k, n);
      if (dims.length > 1) z[dims[1]] = -at(r, rows);
      paint(image, decode(z), c);
      ctx.putImageData(image, k * w, r * h);
    }
  }
  canvas.dataset.drawn = String(rows * n);
}
