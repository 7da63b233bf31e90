// The programs the latent pad runs in the page, and the arithmetic of the posterior: the payload's reader
// (its layout is vae/browser/pad.py's), the ops of vae/browser/ops.py over a model's own weights, the
// decoder z -> picture and the encoder x -> q(z|x), KL to the prior, the reparameterization, the
// reconstruction term. The first of the files vae/browser/pad.py joins into the pad's one module.
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
export function compileProgram(ops, offsets, weights, inSize, what) {
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

// The model's decoder as a function z (latentDim) -> picture (C * H * W, in [0, 1]), the mean of p(x|z).
// Its .logits(z) stops before the final sigmoid, for the reconstruction term. Either's returned array is
// reused by the next call of both.
export function compileDecoder(model, weights) {
  const ops = model.ops, last = ops.length - 1;
  if (last < 0 || ops[last].op !== "sigmoid") throw new Error("the decoder does not end in a sigmoid");
  const [logits, size] = compileProgram(ops.slice(0, last), model.offsets, weights, model.latentDim, "decoder");
  const [c, h, w] = model.shape;
  if (size !== c * h * w) throw new Error("the decoder's output does not have the picture's shape");
  const decode = (z) => {
    const x = logits(z);
    for (let i = 0; i < x.length; i++) x[i] = 1 / (1 + Math.exp(-x[i]));
    return x;
  };
  decode.logits = logits;
  return decode;
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

// -log p(x|z) in nats, summed over pixels, from the decoder's logits at z: as vae/nets/loss.py's
// reconstruction_nll. likelihood: the payload's {kind, logSigma}; perPixel: the gaussian-pixel log sigmas.
export function reconstructionNll(logits, x, likelihood, perPixel) {
  let nll = 0;
  if (likelihood.kind === "bernoulli") {
    // softplus(a) - x a, with softplus(a) = max(a, 0) + log(1 + exp(-|a|)): BCE with logits.
    for (let i = 0; i < x.length; i++) {
      const a = logits[i];
      nll += Math.max(a, 0) + Math.log1p(Math.exp(-Math.abs(a))) - x[i] * a;
    }
    return nll;
  }
  const half = 0.5 * Math.log(2 * Math.PI);
  for (let i = 0; i < x.length; i++) {
    const logSigma = perPixel ? perPixel[i] : likelihood.logSigma;
    const r = (x[i] - 1 / (1 + Math.exp(-logits[i]))) * Math.exp(-logSigma);
    nll += 0.5 * r * r + logSigma + half;
  }
  return nll;
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
