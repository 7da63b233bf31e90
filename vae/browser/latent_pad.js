// The latent pad: a plane over one or two latent dimensions whose point follows the pointer, and the
// decoder's picture of that point, decoded here, in the page, on every pointer move.
// Mounted by pages/ui/latent_pad.py (st.components.v2); the payload's layout is vae/browser/pad.py's and
// its decoder ops are vae/browser/ops.py's. Nothing is fetched: the weights, codes and thumbnails all
// come in the payload.

const PICTURE_PX = 392; // the decoded picture's largest side on screen, in CSS pixels
const THUMB_PX = 112; // hover thumbnails
const MARGIN = { left: 34, right: 10, top: 10, bottom: 28 }; // around the plot area, CSS pixels
const STRIP_HEIGHT = 120; // a 1-D latent space's pad
const DOT_RADIUS = 2.6;
const HOVER_RADIUS = 8; // how near a dot the pointer must be to pick it, CSS pixels
const KEY_STEP = 0.1; // an arrow key on the pad (0.5 with Shift)
const COMMIT_DELAY_MS = 250; // keyboard moves reach Python once the keys rest
const LATENCY_SAMPLES = 4096;

// --- the payload -----------------------------------------------------------------------------------

export function parsePayload(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (magic !== "LPAD" || view.getUint32(4, true) !== 1) throw new Error("the payload is not a latent pad's");
  const length = view.getUint32(8, true);
  const text = new TextDecoder().decode(bytes.subarray(12, 12 + length));
  const header = JSON.parse(text);
  const start = 12 + length;
  // slice() copies into a buffer of its own, at offset 0, so typed arrays over it are aligned.
  const section = (name) => {
    const s = header.sections[name];
    return s ? bytes.slice(start + s[0], start + s[0] + s[1]) : null;
  };
  return { header, text, section };
}

let float16Table = null;

function halfToFloat(bytes) {
  if (!float16Table) {
    float16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
      float16Table[h] = e === 0 ? sign * f * 2 ** -24
        : e === 31 ? (f ? NaN : sign * Infinity) : sign * (1 + f / 1024) * 2 ** (e - 15);
    }
  }
  const half = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  const out = new Float32Array(half.length);
  for (let i = 0; i < half.length; i++) out[i] = float16Table[half[i]];
  return out;
}

export function weightsOf(model, bytes) {
  return model.dtype === "float16" ? halfToFloat(bytes) : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

// --- the decoder -----------------------------------------------------------------------------------

// out (n_out) = b + x (n_in) @ Wt (n_in, n_out); the zeros a ReLU left in x cost nothing.
function linear(x, nIn, wt, b, out, nOut) {
  out.set(b);
  for (let i = 0; i < nIn; i++) {
    const v = x[i];
    if (v === 0) continue;
    const row = i * nOut;
    for (let o = 0; o < nOut; o++) out[o] += v * wt[row + o];
  }
  return out;
}

// A convolution's sums, laid out (plane, cout), start at the bias of each output channel.
function startSums(acc, bias, plane) {
  for (let p = 0; p < plane; p++) acc.set(bias, p * bias.length);
}

// The sums (plane, cout) as channel planes (cout, plane), the layout every op passes on.
function toPlanes(acc, out, plane, cout) {
  for (let p = 0; p < plane; p++) for (let co = 0; co < cout; co++) out[co * plane + p] = acc[p * cout + co];
  return out;
}

// Both convolutions run from the input's side: each nonzero input pixel adds into the outputs it reaches,
// so the zeros a ReLU left, or the blank of a drawing, cost nothing. The sums run in acc, laid out
// (oh, ow, cout), over the weight as wt (cin, kh, kw, cout), so the innermost loop walks both contiguously.
// tap(i, k, stride, pad, dil, n) is the output coordinate input coordinate i reaches through kernel tap k
// (n outputs along that axis), or -1.
function scatterConv(x, op, wt, bias, acc, out, tap) {
  const [h, w] = op.in, [oh, ow] = op.out, [kh, kw] = op.k, [sh, sw] = op.stride, [ph, pw] = op.pad, [dh, dw] = op.dil;
  const cout = op.cout, plane = oh * ow;
  startSums(acc, bias, plane);
  for (let ci = 0; ci < op.cin; ci++) {
    for (let iy = 0; iy < h; iy++) {
      for (let ix = 0; ix < w; ix++) {
        const v = x[(ci * h + iy) * w + ix];
        if (v === 0) continue;
        for (let ky = 0; ky < kh; ky++) {
          const oy = tap(iy, ky, sh, ph, dh, oh);
          if (oy < 0) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ox = tap(ix, kx, sw, pw, dw, ow);
            if (ox < 0) continue;
            const a = (oy * ow + ox) * cout, b = ((ci * kh + ky) * kw + kx) * cout;
            for (let co = 0; co < cout; co++) acc[a + co] += v * wt[b + co];
          }
        }
      }
    }
  }
  return toPlanes(acc, out, plane, cout);
}

// ConvTranspose2d: input i adds into output i * stride - pad + k * dil.
function transposedTap(i, k, s, p, d, n) {
  const o = i * s - p + k * d;
  return o >= 0 && o < n ? o : -1;
}

// Conv2d (zero padding): output o reads input o * stride - pad + k * dil, so input i reaches the o that solves it.
function directTap(i, k, s, p, d, n) {
  const t = i + p - k * d;
  return t >= 0 && t % s === 0 && t / s < n ? t / s : -1;
}

// A convolution's weight as (cin, kh, kw, cout), the layout scatterConv reads: torch keeps a Conv2d's as
// (cout, cin, kh, kw) (outFirst) and a ConvTranspose2d's as (cin, cout, kh, kw).
function channelsLast(weight, op, outFirst) {
  const [kh, kw] = op.k, taps = kh * kw, out = new Float32Array(weight.length);
  for (let ci = 0; ci < op.cin; ci++)
    for (let co = 0; co < op.cout; co++) {
      const from = (outFirst ? co * op.cin + ci : ci * op.cout + co) * taps;
      for (let t = 0; t < taps; t++) out[(ci * taps + t) * op.cout + co] = weight[from + t];
    }
  return out;
}

// Every op a payload may hold, keyed by name: exactly vae/browser/ops.py's OPS (tests/e2e/test_pad_ops.py
// checks both the set and each op's numbers). Each gets the op's JSON, tensor(i) (the program's i-th
// tensor, flat) and its input's size, once per model, and returns [step, output size]: step(x) -> y
// may write into x and returns y; a null step leaves x as it is.
export const OPS = {
  linear(op, tensor) {
    const wt = tensor(op.w), b = tensor(op.b), out = new Float32Array(op.out);
    return [(x) => linear(x, op.in, wt, b, out, op.out), op.out];
  },
  relu(op, tensor, size) {
    return [(x) => { for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] = 0; return x; }, size];
  },
  reshape(op, tensor, size) {
    if (op.shape.reduce((a, b) => a * b, 1) !== size) throw new Error(`a reshape of ${size} values to ${op.shape}`);
    return [null, size]; // the buffer is already in the shape's (C, H, W) order
  },
  convT(op, tensor) {
    const wt = channelsLast(tensor(op.w), op, false), bias = tensor(op.b);
    const acc = new Float32Array(op.cout * op.out[0] * op.out[1]), out = new Float32Array(acc.length);
    return [(x) => scatterConv(x, op, wt, bias, acc, out, transposedTap), out.length];
  },
  conv2d(op, tensor) {
    const wt = channelsLast(tensor(op.w), op, true), bias = tensor(op.b);
    const acc = new Float32Array(op.cout * op.out[0] * op.out[1]), out = new Float32Array(acc.length);
    return [(x) => scatterConv(x, op, wt, bias, acc, out, directTap), out.length];
  },
  sigmoid(op, tensor, size) {
    return [(x) => { for (let i = 0; i < x.length; i++) x[i] = 1 / (1 + Math.exp(-x[i])); return x; }, size];
  },
};

// A program's ops (vae/browser/ops.py) over its flat weights as one function x (inSize values) -> y; returns
// [run, output size]. The returned array is reused by the next call.
function compileProgram(ops, offsets, weights, inSize, what) {
  const tensor = (i) => weights.subarray(offsets[i], i + 1 < offsets.length ? offsets[i + 1] : weights.length);
  const steps = [];
  let size = inSize;
  for (const op of ops) {
    if (!Object.hasOwn(OPS, op.op)) throw new Error(`the ${what} has a layer this page cannot run (${op.op})`);
    const [step, out] = OPS[op.op](op, tensor, size);
    if (step) steps.push(step);
    size = out;
  }
  const input = new Float32Array(inSize);
  const run = (values) => {
    input.set(values);
    let x = input;
    for (const step of steps) x = step(x);
    return x;
  };
  return [run, size];
}

// The model's decoder as a function z (latentDim) -> picture (C * H * W, in [0, 1]). The returned
// array is reused by the next call.
export function compileDecoder(model, weights) {
  const [run, size] = compileProgram(model.ops, model.offsets, weights, model.latentDim, "decoder");
  const [c, h, w] = model.shape;
  if (size !== c * h * w) throw new Error("the decoder's output does not have the picture's shape");
  return run;
}

// The model's encoder as a function x (C * H * W in [0, 1], channel planes) -> {mu, logvar} (latentDim
// each): the diagonal Gaussian posterior q(z|x). model: {shape, latentDim, ops, offsets} of its encoder
// program. The returned arrays are reused by the next call.
export function compileEncoder(model, weights) {
  const [c, h, w] = model.shape, d = model.latentDim;
  const [run, size] = compileProgram(model.ops, model.offsets, weights, c * h * w, "encoder");
  if (size !== 2 * d) throw new Error("the encoder's output is not a mean and a log-variance per dimension");
  return (x) => {
    const y = run(x);
    return {mu: y.subarray(0, d), logvar: y.subarray(d, 2 * d)};
  };
}

// --- the posterior ------------------------------------------------------------------------------------

// KL(N(mu, diag(exp(logvar))) || N(0, I)) in nats, summed over every dimension: the closed form of Kingma &
// Welling 2013, appendix B, as vae/nets/loss.py's kl_divergence.
export function klToPrior(mu, logvar) {
  let kl = 0;
  for (let i = 0; i < mu.length; i++) kl += 0.5 * (mu[i] * mu[i] + Math.exp(logvar[i]) - 1 - logvar[i]);
  return kl;
}

// A seeded source of standard normal numbers (mulberry32 for uniforms, Box-Muller for pairs of normals),
// so a Resample is a new seed and a test can draw the same eps twice.
export function normalSource(seed) {
  let state = seed >>> 0, spare = null;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    if (spare !== null) { const v = spare; spare = null; return v; }
    const u = 1 - uniform(), v = uniform(), r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

// k samples of z = mu + sigma * eps, eps ~ N(0, I) (the reparameterization, Kingma & Welling 2013, sec. 2.4),
// as one Float32Array (k * D, row-major), with the eps that made them.
export function samplePosterior(mu, logvar, k, normal) {
  const d = mu.length, z = new Float32Array(k * d), eps = new Float32Array(k * d);
  for (let s = 0; s < k; s++)
    for (let i = 0; i < d; i++) {
      eps[s * d + i] = normal();
      z[s * d + i] = mu[i] + Math.exp(0.5 * logvar[i]) * eps[s * d + i];
    }
  return {z, eps};
}

// pixels (C * H * W in [0, 1], channel planes) -> the RGBA of an ImageData; returns a checksum of it.
function paint(image, pixels, channels) {
  const rgba = image.data, n = image.width * image.height;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) {
      const v = pixels[(channels === 3 ? k * n : 0) + i];
      const byte = v >= 1 ? 255 : v <= 0 ? 0 : Math.round(v * 255);
      rgba[4 * i + k] = byte;
      sum = (sum * 31 + byte) | 0;
    }
    rgba[4 * i + 3] = 255;
  }
  return sum;
}

// --- the view --------------------------------------------------------------------------------------

const HTML = `
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
  <div class="lp-error" hidden></div>
  <div class="lp-hover">
    <div class="lp-thumbs">
      <figure><canvas class="lp-original"></canvas><figcaption>test image</figcaption></figure>
      <figure><canvas class="lp-recon"></canvas><figcaption>reconstruction</figcaption></figure>
    </div>
    <div class="lp-hover-text">Hover a dot to see its test image and its reconstruction.</div>
  </div>
</div>`;

function sameBytes(a, b) {
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const fmt = (v) => (Math.abs(v) < 0.005 ? "0.00" : v.toFixed(2)).replace("-", "\u2212");

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
    this.memory = (window.__latentPadPoints = window.__latentPadPoints || {});
    this.bind();
    this.resize = new ResizeObserver(() => this.layout());
    this.resize.observe(this.el.pad);
    root.latentPad = this; // for tests and benchmarks: decodeAt, point, stats, versions
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
    this.el.hoverText.dataset.idle = sprite ? "Hover a dot to see its test image and its reconstruction."
      : "Hover a dot to see its reconstruction (the test images are not on this machine).";
    if (this.hovered === undefined || this.hovered < 0) this.el.hoverText.textContent = this.el.hoverText.dataset.idle;
    const planeChanged = !this.header || this.header.plane.dims.join() !== header.plane.dims.join();
    this.header = header;
    this.headerText = text;
    this.planeKey = header.plane.dims.join(",");
    if (!this.point || planeChanged) this.point = (this.memory[this.planeKey] || header.point).slice();
    this.root.dataset.modelKey = header.model.key;
    this.root.dataset.versions = String(this.versions);
    this.buildSliders(planeChanged);
    this.buildLegend();
    this.hovered = -1;
    this.layout();
    this.showError(null);
  }

  get oneD() { return this.header.plane.dims.length === 1; }

  // The full code at the pad's point: the plane's dimensions from the point, the others from base.
  code(point = this.point) {
    const z = Float32Array.from(this.header.plane.base);
    this.header.plane.dims.forEach((d, i) => { z[d] = point[i]; });
    return z;
  }

  decodeAt(z) { return Array.from(this.decoder(Float32Array.from(z))); }

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
    this.drawCodes();
    this.update(null);
  }

  // Plot area in CSS pixels and the latent range it spans.
  frame() {
    const { w, h } = this.size, lim = this.header.plane.limit;
    const x0 = MARGIN.left, x1 = w - MARGIN.right, y0 = MARGIN.top, y1 = h - MARGIN.bottom;
    return { x0, x1, y0, y1, lim, sx: (x1 - x0) / (2 * lim), sy: (y1 - y0) / (2 * lim) };
  }

  toPixels(zx, zy, f = this.frame()) {
    return [f.x0 + (zx + f.lim) * f.sx, this.oneD ? (f.y0 + f.y1) / 2 : f.y1 - (zy + f.lim) * f.sy];
  }

  colours() {
    const style = getComputedStyle(this.root);
    const text = style.getPropertyValue("--st-text-color").trim() || "#31333F";
    return { text, font: style.fontFamily || "sans-serif" };
  }

  drawCodes() {
    const ctx = this.el.codes.getContext("2d"), f = this.frame(), { w, h } = this.size;
    const { text, font } = this.colours();
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#FFFFFF";
    ctx.fillRect(f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0);
    const ticks = [];
    const step = f.sx >= 28 ? 1 : 2;
    for (let t = -Math.floor(f.lim); t <= f.lim; t += 1) if (t % step === 0) ticks.push(t);
    ctx.lineWidth = 1;
    ctx.font = `13px ${font}`;
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
      ctx.fillStyle = (classes[this.labels[k]] || { color: "#7F7F7F" }).color;
      ctx.beginPath(); ctx.arc(px, py, DOT_RADIUS, 0, 2 * Math.PI); ctx.fill();
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
    ctx.font = `12px ${font}`; ctx.fillStyle = "#3A3D45"; ctx.textAlign = "left"; ctx.textBaseline = "bottom";
    for (const s of [1, 2]) {
      const [px, py] = this.oneD ? this.toPixels(s, 0, f) : this.toPixels(s * Math.SQRT1_2, s * Math.SQRT1_2, f);
      ctx.fillText(`${s}\u03c3`, px + 3, this.oneD ? f.y0 + 14 : py - 2);
    }
    ctx.strokeStyle = "#A9AFB9"; ctx.lineWidth = 1;
    ctx.strokeRect(f.x0 + 0.5, f.y0 + 0.5, f.x1 - f.x0 - 1, f.y1 - f.y0 - 1);
    // Axis names at the ends of the axes.
    const names = this.header.plane.names;
    ctx.font = `bold 13px ${font}`; ctx.fillStyle = "#31333F"; // inside the white plot area, whatever the theme
    ctx.textAlign = "right"; ctx.textBaseline = "bottom";
    ctx.fillText(`${names[0]} \u2192`, f.x1 - 4, f.y1 - 4);
    if (!this.oneD) {
      ctx.textAlign = "left"; ctx.textBaseline = "top";
      ctx.fillText(`\u2191 ${names[1]}`, f.x0 + 4, f.y0 + 4);
    }
  }

  drawMarks() {
    const ctx = this.el.marks.getContext("2d"), f = this.frame(), { w, h } = this.size;
    ctx.clearRect(0, 0, w, h);
    if (this.hovered >= 0) {
      const hx = this.dots[2 * this.hovered], hy = this.dots[2 * this.hovered + 1];
      ctx.strokeStyle = "#111"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(hx, hy, DOT_RADIUS + 3, 0, 2 * Math.PI); ctx.stroke();
    }
    const [px, py] = this.toPixels(this.point[0], this.oneD ? 0 : this.point[1], f);
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

  drawPicture() {
    const canvas = this.el.picture, ctx = canvas.getContext("2d");
    if (!this.image) this.image = ctx.createImageData(canvas.width, canvas.height);
    const t = performance.now();
    const pixels = this.decoder(this.code());
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
    const code = this.code(), d = code.length;
    const shown = Array.from(code.slice(0, 6), fmt).join(", ");
    this.el.caption.textContent = `decode(z) at z = (${shown}${d > 6 ? ", \u2026" : ""})`;
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
      item.append(dot, document.createTextNode(c.name));
      legend.appendChild(item);
    });
  }

  moved(eventTime) {
    this.memory[this.planeKey] = this.point.slice();
    this.update(eventTime);
  }

  pointerTo(event) {
    const f = this.frame(), r = this.el.pad.getBoundingClientRect();
    const clamp = (v) => Math.max(-f.lim, Math.min(f.lim, v));
    const zx = clamp((event.clientX - r.left - f.x0) / f.sx - f.lim);
    const zy = clamp((f.y1 - (event.clientY - r.top)) / f.sy - f.lim);
    this.point = this.oneD ? [zx] : [zx, zy];
    this.moved(event.timeStamp);
  }

  bind() {
    const pad = this.el.pad;
    pad.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || !this.header) return;
      pad.setPointerCapture(e.pointerId);
      pad.classList.add("lp-pointer"); // focused for the arrow keys, without the keyboard's focus ring
      pad.focus({ preventScroll: true });
      this.dragging = true;
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
    pad.addEventListener("pointerup", end);
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

  hoverAt(event) {
    if (!this.dots || !this.dots.length) return;
    const r = this.el.pad.getBoundingClientRect(), x = event.clientX - r.left, y = event.clientY - r.top;
    let best = -1, bestD = HOVER_RADIUS * HOVER_RADIUS;
    for (let k = 0; k < this.dots.length / 2; k++) {
      const dx = this.dots[2 * k] - x, dy = this.dots[2 * k + 1] - y, dd = dx * dx + dy * dy;
      if (dd < bestD) { bestD = dd; best = k; }
    }
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
    text.append(dot, name, document.createTextNode(` \u00b7 test image #${k} \u00b7 \u03bc = (${shown})`));
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
    const text = JSON.stringify(value);
    if (text === this.committed || !this.setStateValue) return;
    this.committed = text;
    this.setStateValue("point", value);
  }

  destroy() {
    this.resize.disconnect();
    clearTimeout(this.commitTimer);
  }
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let root = parentElement.querySelector(":scope > .lp-root");
  if (!root) {
    root = document.createElement("div");
    root.className = "lp-root";
    parentElement.appendChild(root);
    new Pad(root);
  }
  const pad = root.latentPad;
  try {
    pad.receive(data, setStateValue);
  } catch (e) {
    pad.showError(e);
  }
  return () => pad.destroy();
}
