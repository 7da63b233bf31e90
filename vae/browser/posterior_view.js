// The encoder's side of the pad: an input's posterior q(z|x) = N(mu, diag(sigma^2)), its reconstruction
// decode(mu), K samples z = mu + sigma * eps decoded in a strip, the numbers (mu, sigma, eps, z, KL, the
// reconstruction term, the ELBO), and samples from the prior p(z) = N(0, I) decoded in a grid. The third of
// the files vae/browser/pad.py joins; the pad (latent_pad.js) draws the posterior on its plane.

const SAMPLES = 16; // K: posterior samples, as dots on the plane and decodes in the strip
const PRIOR_SIDE = 8; // the prior's grid is PRIOR_SIDE x PRIOR_SIDE decodes
const STRIP_TILE_PX = 56; // a sample's decode on screen (2x at 28 px)
const PRIOR_TILE_PX = 48;
const RECON_PX = 112;
const DECODE_BUDGET_MS = 8; // decoding the strip and the grid, per animation frame: the pointer comes first
const PEN_BUDGET_MS = 2; // the strip's share of a frame while the pen draws; a slower decoder waits for it to lift
const ANIMATE_MS = 700; // a new eps this often while Animate is on

// n codes z ~ N(0, I) of d dimensions, row-major, from a normalSource.
export function priorCodes(n, d, normal) {
  const z = new Float32Array(n * d);
  for (let i = 0; i < z.length; i++) z[i] = normal();
  return z;
}

const newSeed = () => (Math.random() * 4294967296) >>> 0;
const num = (v, digits = 2) => (Math.abs(v) < 0.5 * 10 ** -digits ? (0).toFixed(digits) : v.toFixed(digits)).replace("-", "\u2212");

// A canvas of `count` tiles, `columns` wide, each one picture at the model's shape with a 1 px gap, enlarged
// on screen; decoded a few per animation frame.
class TileSheet {
  constructor(canvas, count, columns, tilePx) {
    Object.assign(this, { canvas, count, columns, tilePx });
    this.ctx = canvas.getContext("2d");
    this.sums = new Int32Array(count);
    this.pending = [];
    this.frame = 0;
  }

  setShape(shape) {
    const [c, h, w] = shape, rows = Math.ceil(this.count / this.columns);
    this.channels = c;
    this.w = w;
    this.h = h;
    this.canvas.width = this.columns * (w + 1) - 1;
    this.canvas.height = rows * (h + 1) - 1;
    const scale = Math.max(1, Math.round(this.tilePx / Math.max(h, w)));
    this.canvas.style.width = `${this.canvas.width * scale}px`;
    this.canvas.style.height = `${this.canvas.height * scale}px`;
    this.image = this.ctx.createImageData(w, h);
    this.ctx.fillStyle = "#fff";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }

  // Decode the tiles with render(i) -> pixels, in as many frames as the budget needs.
  schedule(render) {
    this.render = render;
    this.pending = Array.from({ length: this.count }, (_, i) => i);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.pump());
  }

  // budget(), when set, gives this frame's ms, 0 to hold the decoding back (forced: decode all the same).
  pump(forced = false) {
    this.frame = 0;
    if (!this.pending.length) return;
    const budget = forced || !this.budget ? DECODE_BUDGET_MS : this.budget();
    if (!budget) {
      this.frame = requestAnimationFrame(() => this.pump());
      return;
    }
    const start = performance.now();
    do {
      const i = this.pending.shift();
      this.sums[i] = paint(this.image, this.render(i), this.channels);
      this.ctx.putImageData(this.image, (i % this.columns) * (this.w + 1), Math.floor(i / this.columns) * (this.h + 1));
    } while (this.pending.length && performance.now() - start < budget);
    if (this.pending.length) this.frame = requestAnimationFrame(() => this.pump());
    else if (this.done) this.done();
  }

  // Everything scheduled, decoded now (tests, and a new model's first picture).
  flush() {
    cancelAnimationFrame(this.frame);
    while (this.pending.length) this.pump(true);
    cancelAnimationFrame(this.frame);
    this.frame = 0;
  }
}

const VIEW_HTML = `
<figure class="lp-recon-box"><canvas class="lp-q-recon"></canvas><figcaption>decode(\u03bc): its reconstruction</figcaption></figure>
<div class="lp-numbers" aria-live="off"></div>`;

const STRIP_HTML = `
<div class="lp-strip-head"><b>z = \u03bc + \u03c3 \u2299 \u03b5</b>, ${SAMPLES} samples from q(z|x), decoded
  <button type="button" data-act="resample" title="Draw a new \u03b5 for every sample">Resample \u03b5</button>
  <label title="Draw a new \u03b5 every ${ANIMATE_MS} ms"><input type="checkbox" data-act="animate"> animate</label></div>
<canvas class="lp-q-samples"></canvas>`;

const PRIOR_HTML = `
<div class="lp-strip-head"><b>Samples from the prior</b>, z ~ N(0, I), decoded
  <button type="button" data-act="prior" title="Draw new codes from the prior">Resample</button></div>
<canvas class="lp-prior-grid"></canvas>`;

class PosteriorView {
  // hosts: {numbers, strip, prior} elements to fill; onChange(eventTime): the posterior or its samples changed.
  constructor(hosts, onChange) {
    hosts.numbers.innerHTML = VIEW_HTML;
    hosts.strip.innerHTML = STRIP_HTML;
    hosts.prior.innerHTML = PRIOR_HTML;
    this.hosts = hosts;
    this.onChange = onChange;
    this.recon = hosts.numbers.querySelector(".lp-q-recon");
    this.numbers = hosts.numbers.querySelector(".lp-numbers");
    this.strip = new TileSheet(hosts.strip.querySelector("canvas"), SAMPLES, SAMPLES / 2, STRIP_TILE_PX);
    this.grid = new TileSheet(hosts.prior.querySelector("canvas"), PRIOR_SIDE * PRIOR_SIDE, PRIOR_SIDE, PRIOR_TILE_PX);
    this.strip.done = () => this.showNumbers();
    this.penDown = () => false; // set by the pad: whether a stroke is being drawn
    this.decodeMs = 0; // the last decode of mu, ms
    this.strip.budget = () => (!this.penDown() ? DECODE_BUDGET_MS : this.decodeMs < PEN_BUDGET_MS ? PEN_BUDGET_MS : 0);
    this.q = null; // {mu, logvar, sigma, x}: the current input's posterior
    this.seed = newSeed();
    this.priorSeed = newSeed();
    this.resamples = 0;
    hosts.strip.querySelector("[data-act=resample]").addEventListener("click", (e) => this.resample(e.timeStamp));
    const animate = hosts.strip.querySelector("[data-act=animate]");
    animate.addEventListener("change", () => this.animate(animate.checked));
    hosts.prior.querySelector("[data-act=prior]").addEventListener("click", () => this.resamplePrior());
  }

  // A model (version): its decoder (compileDecoder), the plane's dims, likelihood and header.
  setModel(model, decoder, likelihood, perPixel, dims) {
    const first = !this.model;
    Object.assign(this, { model, decoder, likelihood, perPixel, dims });
    const [, h, w] = model.shape;
    if (first || this.recon.width !== w || this.recon.height !== h) {
      this.recon.width = w;
      this.recon.height = h;
      const s = Math.max(1, Math.floor(RECON_PX / Math.max(h, w)));
      this.recon.style.width = `${w * s}px`;
      this.recon.style.height = `${h * s}px`;
      this.strip.setShape(model.shape);
      this.grid.setShape(model.shape);
    }
    this.drawPrior();
  }

  // The posterior of input x: mu and logvar (latentDim each, copied), drawn and decoded.
  set(mu, logvar, x, eventTime) {
    const d = mu.length;
    const sigma = Float32Array.from(logvar, (v) => Math.exp(0.5 * v));
    this.q = { mu: Float32Array.from(mu), logvar: Float32Array.from(logvar), sigma, x, kl: klToPrior(mu, logvar) };
    if (!this.eps || this.eps.length !== SAMPLES * d) this.drawEps();
    this.sample();
    const ctx = this.recon.getContext("2d");
    if (!this.reconImage) this.reconImage = ctx.createImageData(this.recon.width, this.recon.height);
    const t = performance.now(), pixels = this.decoder(this.q.mu);
    this.decodeMs = performance.now() - t;
    this.reconSum = paint(this.reconImage, pixels, this.model.shape[0]);
    ctx.putImageData(this.reconImage, 0, 0);
    this.hosts.numbers.classList.add("lp-has-input");
    this.onChange(eventTime);
  }

  clear() {
    this.q = null;
    this.hosts.numbers.classList.remove("lp-has-input");
    this.hosts.strip.classList.remove("lp-has-input");
    this.numbers.textContent = "";
    this.onChange(null);
  }

  drawEps() {
    const d = this.model.latentDim, normal = normalSource(this.seed);
    this.eps = priorCodes(SAMPLES, d, normal);
  }

  // z = mu + sigma * eps for the current eps; their decodes and reconstruction terms follow, frame by frame.
  sample() {
    const { mu, sigma, x } = this.q, d = mu.length;
    this.z = new Float32Array(SAMPLES * d);
    for (let s = 0; s < SAMPLES; s++) for (let i = 0; i < d; i++) this.z[s * d + i] = mu[i] + sigma[i] * this.eps[s * d + i];
    this.nll = new Float64Array(SAMPLES).fill(NaN);
    this.hosts.strip.classList.add("lp-has-input");
    this.showNumbers();
    this.strip.schedule((s) => {
      const logits = this.decoder.logits(this.z.subarray(s * d, (s + 1) * d));
      this.nll[s] = reconstructionNll(logits, x, this.likelihood, this.perPixel);
      for (let i = 0; i < logits.length; i++) logits[i] = 1 / (1 + Math.exp(-logits[i]));
      return logits;
    });
  }

  resample(eventTime) {
    this.seed = newSeed();
    this.resamples += 1;
    if (!this.model) return;
    this.drawEps();
    if (this.q) {
      this.sample();
      this.onChange(eventTime);
    }
  }

  animate(on) {
    clearInterval(this.animation);
    this.animation = on ? setInterval(() => this.resample(performance.now()), ANIMATE_MS) : null;
  }

  // The reconstruction term: the mean of -log p(x|z) over the K samples, once all are decoded.
  reconTerm() {
    let sum = 0;
    for (const v of this.nll) sum += v;
    return sum / SAMPLES; // NaN until every sample is decoded
  }

  showNumbers() {
    if (!this.q) return;
    const { mu, sigma, kl } = this.q, d = mu.length, recon = this.reconTerm();
    const rows = this.dims.map((i) => `<tr><th>z${i + 1}</th><td>${num(mu[i])}</td><td>${num(sigma[i])}</td>`
      + `<td>${num(this.eps[i])}</td><td>${num(this.z[i])}</td></tr>`).join("");
    const ready = Number.isFinite(recon);
    this.numbers.innerHTML = `<table><thead><tr><th></th><th>\u03bc</th><th>\u03c3</th><th>\u03b5\u2081</th>`
      + `<th>z\u2081</th></tr></thead><tbody>${rows}</tbody></table>`
      + `<dl><dt>KL(q(z|x) \u2016 p(z))</dt><dd data-kl="${kl}">${num(kl)} nats</dd>`
      + `<dt>\u2212E<sub>q</sub> log p(x|z)</dt><dd data-recon="${ready ? recon : ""}">${ready ? num(recon, 1) : "\u2026"} nats</dd>`
      + `<dt>ELBO</dt><dd>${ready ? num(-(recon + kl), 1) : "\u2026"} nats</dd></dl>`
      + `<p class="lp-note">${d > this.dims.length ? `KL sums all ${d} dimensions; ` : ""}the reconstruction term `
      + `averages the ${SAMPLES} samples (sample 1: ringed on the plane, first in the strip).</p>`;
  }

  // --- the prior ---

  resamplePrior() {
    this.priorSeed = newSeed();
    this.drawPrior();
  }

  drawPrior() {
    const d = this.model.latentDim, z = priorCodes(PRIOR_SIDE * PRIOR_SIDE, d, normalSource(this.priorSeed));
    this.priorZ = z;
    this.grid.schedule((i) => this.decoder(z.subarray(i * d, (i + 1) * d)));
  }

  destroy() {
    this.animate(false);
    cancelAnimationFrame(this.strip.frame);
    cancelAnimationFrame(this.grid.frame);
  }
}
