// The input panel: a picture at the model's own image shape (C, H, W) for the encoder, drawn with a soft
// brush, dropped or pasted as an image file (centre-cropped and resized here), or taken from a test image.
// The canvas holds the picture at the model's resolution, enlarged on screen pixel for pixel, so what is
// drawn is exactly what the encoder sees. The second of the files vae/browser/pad.py joins.

const DRAW_PX = 232; // the panel's largest side on screen, CSS pixels
const UNDO_DEPTH = 40;
const BRUSH_OF_HEIGHT = 0.075; // the brush's default width as a fraction of the image's height: 2 px at 28
const GREY_BRUSH = "#ffffff"; // digits are light strokes on black, as MNIST's
const COLOUR_BRUSH = "#ffb000";

const PANEL_HTML = `
<div class="lp-draw-wrap">
  <canvas class="latent-draw" tabindex="0" aria-label="Input: draw here with the pointer"></canvas>
  <div class="lp-draw-hint">Draw here, drop or paste an image, or click a dot on the plane</div>
</div>
<div class="lp-tools">
  <button type="button" data-act="undo" title="Undo the last stroke">Undo</button>
  <button type="button" data-act="clear" title="Start again from a blank input">Clear</button>
  <button type="button" data-act="invert" title="Swap light and dark (a dark digit on white paper)">Invert</button>
  <label class="lp-file" title="Encode an image file from this computer">Open…<input type="file" accept="image/*"></label>
</div>
<div class="lp-tools">
  <label class="lp-brush">brush <input type="range" min="0.5" max="6" step="0.25"></label>
  <input class="lp-colour" type="color" aria-label="Brush colour" hidden>
</div>
<div class="lp-input-note"></div>`;

// An image's centre crop with the aspect ratio of a (h, w) target: [sx, sy, sw, sh] in its pixels.
export function centreCrop(width, height, h, w) {
  const scale = Math.min(width / w, height / h), sw = w * scale, sh = h * scale;
  return [(width - sw) / 2, (height - sh) / 2, sw, sh];
}

class InputPanel {
  // host: the element to fill; onChange(eventTime, final): the picture changed (final: a stroke ended, a file
  // or a test image was loaded, Undo, Clear), called in the event that changed it.
  constructor(host, onChange) {
    host.innerHTML = PANEL_HTML;
    const $ = (s) => host.querySelector(s);
    this.canvas = $(".latent-draw");
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    this.brush = $(".lp-brush input");
    this.colour = $(".lp-colour");
    this.note = $(".lp-input-note");
    this.wrap = $(".lp-draw-wrap");
    this.onChange = onChange;
    this.undo = [];
    this.drawing = false;
    this.filled = false; // anything drawn or loaded since the last Clear (the hint shows until then)
    this.shape = null;
    this.bind(host);
  }

  // The model's image shape; a new shape starts a blank input, the same one keeps the drawing.
  setShape(shape) {
    const [c, h, w] = shape;
    if (this.shape && this.shape.join() === shape.join()) return;
    this.shape = shape.slice();
    this.canvas.width = w;
    this.canvas.height = h;
    const scale = Math.max(1, Math.floor(DRAW_PX / Math.max(h, w)));
    this.canvas.style.width = `${w * scale}px`;
    this.canvas.style.height = `${h * scale}px`;
    this.brush.value = String(Math.max(0.5, Math.round(h * BRUSH_OF_HEIGHT * 4) / 4));
    this.colour.hidden = c !== 3;
    this.colour.value = c === 3 ? COLOUR_BRUSH : GREY_BRUSH;
    this.undo = [];
    this.blank();
    this.filled = false;
  }

  get filled() { return this._filled; }

  set filled(value) {
    this._filled = value;
    if (this.wrap) this.wrap.classList.toggle("lp-filled", value);
  }

  blank() {
    this.ctx.fillStyle = "#000";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }

  // The picture as the encoder takes it: C * H * W values in [0, 1], channel planes (grey: luminance).
  pixels() {
    const [c, h, w] = this.shape, n = h * w, rgba = this.ctx.getImageData(0, 0, w, h).data;
    const x = new Float32Array(c * n);
    for (let i = 0; i < n; i++) {
      if (c === 3) {
        for (let k = 0; k < 3; k++) x[k * n + i] = rgba[4 * i + k] / 255;
      } else {
        // Rec. 601 luma, rounded to a grey level as a stored grey image would be.
        x[i] = Math.round(0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]) / 255;
      }
    }
    return x;
  }

  // The picture as bytes (C * H * W, channel planes), for a server that encodes it.
  bytes() {
    return Uint8Array.from(this.pixels(), (v) => Math.round(v * 255));
  }

  remember() {
    const { width, height } = this.canvas;
    this.undo.push({ image: this.ctx.getImageData(0, 0, width, height), filled: this.filled });
    if (this.undo.length > UNDO_DEPTH) this.undo.shift();
  }

  at(event) {
    const r = this.canvas.getBoundingClientRect();
    return [(event.clientX - r.left) * this.canvas.width / r.width, (event.clientY - r.top) * this.canvas.height / r.height];
  }

  // One segment of the stroke, soft-edged: a round line with a blur of half its width.
  segment(from, to) {
    const ctx = this.ctx, width = Number(this.brush.value);
    ctx.save();
    ctx.strokeStyle = ctx.shadowColor = this.colour.value;
    ctx.lineWidth = width;
    ctx.shadowBlur = width / 2;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0] + 1e-3, to[1]); // a zero-length line draws nothing: a click makes a dot
    ctx.stroke();
    ctx.restore();
  }

  bind(host) {
    const canvas = this.canvas;
    canvas.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || !this.shape) return;
      canvas.setPointerCapture(e.pointerId);
      this.remember();
      this.drawing = true;
      this.filled = true;
      this.last = this.at(e);
      this.segment(this.last, this.last);
      this.onChange(e.timeStamp, false);
      e.preventDefault();
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!this.drawing) return;
      const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
      for (const c of events.length ? events : [e]) {
        const p = this.at(c);
        this.segment(this.last, p);
        this.last = p;
      }
      this.onChange(e.timeStamp, false);
    });
    const end = (e) => {
      if (!this.drawing) return;
      this.drawing = false;
      this.onChange(e.timeStamp, true);
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    host.querySelector("[data-act=undo]").addEventListener("click", (e) => {
      const last = this.undo.pop();
      if (!last) return;
      this.ctx.putImageData(last.image, 0, 0);
      this.filled = last.filled;
      this.onChange(e.timeStamp, true);
    });
    host.querySelector("[data-act=clear]").addEventListener("click", (e) => {
      this.remember();
      this.blank();
      this.filled = false;
      this.onChange(e.timeStamp, true);
    });
    host.querySelector("[data-act=invert]").addEventListener("click", (e) => {
      const { width, height } = this.canvas, image = this.ctx.getImageData(0, 0, width, height), d = image.data;
      this.remember();
      for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) d[i + k] = 255 - d[i + k];
      this.ctx.putImageData(image, 0, 0);
      this.filled = true;
      this.onChange(e.timeStamp, true);
    });
    const file = host.querySelector("input[type=file]");
    file.addEventListener("change", () => {
      if (file.files.length) this.loadFile(file.files[0]);
      file.value = "";
    });
    host.addEventListener("dragover", (e) => { e.preventDefault(); host.classList.add("lp-drop"); });
    host.addEventListener("dragleave", () => host.classList.remove("lp-drop"));
    host.addEventListener("drop", (e) => {
      e.preventDefault();
      host.classList.remove("lp-drop");
      const dropped = e.dataTransfer && e.dataTransfer.files[0];
      if (dropped) this.loadFile(dropped);
      else this.say("Drop an image file (PNG or JPEG) from your computer here.");
    });
    // A paste anywhere on the page, unless it goes into a text field.
    this.onPaste = (e) => {
      const target = e.target;
      if (target && (target.isContentEditable || /^(INPUT|TEXTAREA)$/.test(target.tagName))) return;
      const item = Array.from((e.clipboardData && e.clipboardData.items) || []).find((i) => i.type.startsWith("image/"));
      if (!item) return;
      e.preventDefault();
      this.loadFile(item.getAsFile());
    };
    document.addEventListener("paste", this.onPaste);
  }

  // One sentence under the panel: a warning (a file that could not be read) or, with warn false, a note.
  say(text, warn = true) {
    this.note.textContent = text;
    this.note.classList.toggle("lp-warn", warn && !!text);
  }

  // An image file, centre-cropped to the model's aspect and resized to its shape, here in the page.
  async loadFile(file) {
    if (!file || !/^image\//.test(file.type)) {
      this.say("That file is not an image: drop or open a PNG, JPEG or WebP picture.");
      return;
    }
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch {
      this.say("This browser could not read that image: try saving it as PNG or JPEG and drop it again.");
      return;
    }
    const [, h, w] = this.shape;
    this.remember();
    this.blank();
    this.ctx.save();
    this.ctx.imageSmoothingEnabled = true;
    this.ctx.imageSmoothingQuality = "high";
    this.ctx.drawImage(bitmap, ...centreCrop(bitmap.width, bitmap.height, h, w), 0, 0, w, h);
    this.ctx.restore();
    bitmap.close();
    this.filled = true;
    this.say("");
    this.onChange(performance.now(), true);
  }

  // A test image, pixel for pixel: the (w x h) cell at (sx, sy) of a thumbnail sheet (an ImageBitmap).
  loadCell(sheet, sx, sy) {
    const [, h, w] = this.shape;
    this.remember();
    this.ctx.save();
    this.ctx.imageSmoothingEnabled = false;
    this.ctx.globalCompositeOperation = "copy";
    this.ctx.drawImage(sheet, sx, sy, w, h, 0, 0, w, h);
    this.ctx.restore();
    this.filled = true;
    this.say("");
    this.onChange(performance.now(), true);
  }

  destroy() {
    document.removeEventListener("paste", this.onPaste);
  }
}
