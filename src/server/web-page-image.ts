/**
 * The web page's image-to-image / inpainting mode: pick or drop an image, paint the area to repaint
 * on a canvas over it (brush size and shape, eraser, clear, invert), choose the strength and A1111's
 * mask settings, and extend the canvas for outpainting (margins filled with the image's edge pixels,
 * the new area white in the mask). It sends POST /sdapi/v1/img2img with the mask as a black-and-white
 * PNG (white = repaint), follows /sdapi/v1/progress while it waits, and shows the result in the gallery.
 * The mask is kept at the image's own size, so margins can change without losing the painting.
 * (No template literals in the script: this file holds it in one.)
 */

export const IMAGE_CSS = `
.modes { display: flex; gap: .4rem; flex-wrap: wrap; }
.modes label.check { border: 1px solid var(--line); border-radius: 7px; padding: .35rem .6rem; font-size: .9rem; }
#image-panel { display: grid; gap: .6rem; }
#drop { border: 2px dashed var(--line); border-radius: 8px; padding: .4rem; text-align: center; color: var(--muted); font-size: .85rem; }
#drop.over { border-color: var(--accent); }
#canvas { width: 100%; height: auto; display: block; image-rendering: pixelated; touch-action: none; cursor: crosshair; background: repeating-conic-gradient(#8884 0 25%, transparent 0 50%) 0 0 / 16px 16px; }
.tools { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; }
.tools button, .tools select { width: auto; font-size: .85rem; padding: .35rem .6rem; }
.tools label.check { font-size: .85rem; }
.tools label:not(.check) { flex-direction: row; align-items: center; gap: .4rem; }
.tools input[type=range] { width: 7rem; }
.pads { display: grid; grid-template-columns: repeat(4, 1fr); gap: .4rem; }
output { font-variant-numeric: tabular-nums; color: var(--fg); }
`;

export const IMAGE_HTML = `
    <div class="modes" role="radiogroup" aria-label="mode">
      <label class="check"><input type="radio" name="mode" id="mode-txt" value="txt2img" checked> Text to image</label>
      <label class="check"><input type="radio" name="mode" id="mode-img" value="img2img"> Image to image / inpaint</label>
    </div>
    <div id="image-panel" class="hidden">
      <label id="drop">Drop an image here, or pick one<input id="init-file" type="file" accept="image/png,image/jpeg"></label>
      <canvas id="canvas" width="8" height="8" class="hidden" aria-label="the image: paint the area to repaint"></canvas>
      <div class="tools">
        <label>Brush <output id="brush-value">24</output><input id="brush" type="range" min="1" max="256" value="24"></label>
        <select id="brush-shape" aria-label="brush shape"><option value="round">round</option><option value="square">square</option></select>
        <label class="check"><input id="eraser" type="checkbox"> Eraser</label>
        <button type="button" id="clear-mask">Clear</button>
        <button type="button" id="invert-mask">Invert</button>
      </div>
      <label>Strength <output id="strength-value">0.75</output><input id="strength" type="range" min="0.01" max="1" step="0.01" value="0.75"></label>
      <div class="row">
        <label>Mask blur<input id="mask-blur" type="number" min="0" max="64" step="1" value="4" inputmode="numeric"></label>
        <label>Masked content<select id="fill"><option value="0">fill</option><option value="1" selected>original</option><option value="2">latent noise</option><option value="3">latent nothing</option></select></label>
      </div>
      <label class="check"><input id="only-masked" type="checkbox"> Only masked (inpaint the area around the mask at full size)</label>
      <label>Outpaint: extend by (pixels, multiples of 8)</label>
      <div class="pads">
        <label>Left<input id="pad-left" type="number" min="0" step="8" value="0" inputmode="numeric"></label>
        <label>Top<input id="pad-top" type="number" min="0" step="8" value="0" inputmode="numeric"></label>
        <label>Right<input id="pad-right" type="number" min="0" step="8" value="0" inputmode="numeric"></label>
        <label>Bottom<input id="pad-bottom" type="number" min="0" step="8" value="0" inputmode="numeric"></label>
      </div>
    </div>
`;

export const IMAGE_SCRIPT = `
var img = { source: null, mask: null, drawing: false, last: null };

function isImageMode() { return $("mode-img").checked; }

function onModeChange() {
  var on = isImageMode();
  $("image-panel").classList.toggle("hidden", !on);
  // the output size is the image's (plus the margins)
  $("size").closest("label").classList.toggle("hidden", on);
  if (on) $("custom-size").classList.add("hidden"); else onSizeChange();
}

function pads() {
  var r = function (id) { return Math.max(0, Math.round(Number($(id).value) / 8) * 8 || 0); };
  return { left: r("pad-left"), top: r("pad-top"), right: r("pad-right"), bottom: r("pad-bottom") };
}

function canvasOf(w, h) { var c = document.createElement("canvas"); c.width = w; c.height = h; return c; }

// loads an image file or blob: its size rounded down to multiples of 8 (the model's grid), within the limit
async function loadImage(blob) {
  var bitmap;
  try { bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" }); }
  catch (e) { setStatus("not an image the browser can read"); return; }
  var max = Number($("width").max) || 2048;
  var scale = Math.min(1, max / Math.max(bitmap.width, bitmap.height));
  var w = Math.max(8, Math.floor(bitmap.width * scale / 8) * 8), h = Math.max(8, Math.floor(bitmap.height * scale / 8) * 8);
  var c = canvasOf(w, h), ctx = c.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, w, h);
  img.source = c;
  img.mask = canvasOf(w, h);
  $("canvas").classList.remove("hidden");
  setStatus("");
  redraw();
}

// the image on the extended canvas: margins filled with its edge pixels stretched outwards
function paddedImage() {
  var p = pads(), s = img.source, w = s.width, h = s.height;
  var c = canvasOf(w + p.left + p.right, h + p.top + p.bottom), ctx = c.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(s, p.left, p.top);
  var L = p.left, T = p.top, R = p.right, B = p.bottom;
  if (L) ctx.drawImage(s, 0, 0, 1, h, 0, T, L, h);
  if (R) ctx.drawImage(s, w - 1, 0, 1, h, L + w, T, R, h);
  if (T) ctx.drawImage(c, 0, T, c.width, 1, 0, 0, c.width, T);
  if (B) ctx.drawImage(c, 0, T + h - 1, c.width, 1, 0, T + h, c.width, B);
  return c;
}

// the mask as sent: black, white where painted (alpha >= 128) and on the margins
function paddedMask() {
  var p = pads(), m = img.mask, w = m.width, h = m.height;
  var c = canvasOf(w + p.left + p.right, h + p.top + p.bottom), ctx = c.getContext("2d");
  var out = ctx.createImageData(c.width, c.height), painted = m.getContext("2d").getImageData(0, 0, w, h).data;
  var any = false;
  for (var y = 0; y < c.height; y++) for (var x = 0; x < c.width; x++) {
    var mx = x - p.left, my = y - p.top;
    var inside = mx >= 0 && my >= 0 && mx < w && my < h;
    var white = inside ? painted[4 * (my * w + mx) + 3] >= 128 : true;
    var i = 4 * (y * c.width + x);
    out.data[i] = out.data[i + 1] = out.data[i + 2] = white ? 255 : 0;
    out.data[i + 3] = 255;
    if (white) any = true;
  }
  ctx.putImageData(out, 0, 0);
  return any ? c : null;
}

function redraw() {
  if (!img.source) return;
  var p = pads(), view = $("canvas"), base = paddedImage();
  view.width = base.width; view.height = base.height;
  var ctx = view.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(base, 0, 0);
  ctx.globalAlpha = 0.55;
  ctx.fillStyle = "#ff4040";
  if (p.left || p.top || p.right || p.bottom) {
    ctx.fillRect(0, 0, view.width, p.top); ctx.fillRect(0, p.top + img.source.height, view.width, p.bottom);
    ctx.fillRect(0, p.top, p.left, img.source.height); ctx.fillRect(p.left + img.source.width, p.top, p.right, img.source.height);
  }
  ctx.drawImage(img.mask, p.left, p.top);
  ctx.globalAlpha = 1;
}

// a pointer position as mask pixels (the canvas is shown scaled)
function maskPoint(ev) {
  var r = $("canvas").getBoundingClientRect(), p = pads();
  var x = (ev.clientX - r.left) * $("canvas").width / r.width, y = (ev.clientY - r.top) * $("canvas").height / r.height;
  return { x: Math.floor(x) - p.left, y: Math.floor(y) - p.top };
}

function dab(ctx, a, b) {
  var size = Number($("brush").value), square = $("brush-shape").value === "square";
  ctx.globalCompositeOperation = $("eraser").checked ? "destination-out" : "source-over";
  ctx.fillStyle = ctx.strokeStyle = "#ff4040";
  if (square) {
    // stamps along the segment: whole pixels, so a square dab covers exactly size x size
    var n = Math.max(1, Math.ceil(Math.hypot(b.x - a.x, b.y - a.y)));
    var h = Math.floor(size / 2);
    for (var i = 0; i <= n; i++) {
      var x = Math.round(a.x + (b.x - a.x) * i / n), y = Math.round(a.y + (b.y - a.y) * i / n);
      ctx.fillRect(x - h, y - h, size, size);
    }
  } else {
    ctx.lineWidth = size; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(a.x + 0.5, a.y + 0.5); ctx.lineTo(b.x + 0.5, b.y + 0.5); ctx.stroke();
  }
  ctx.globalCompositeOperation = "source-over";
}

function paintStart(ev) {
  if (!img.mask) return;
  ev.preventDefault();
  $("canvas").setPointerCapture && ev.pointerId !== undefined && $("canvas").setPointerCapture(ev.pointerId);
  img.drawing = true;
  img.last = maskPoint(ev);
  dab(img.mask.getContext("2d"), img.last, img.last);
  redraw();
}

function paintMove(ev) {
  if (!img.drawing) return;
  var p = maskPoint(ev);
  dab(img.mask.getContext("2d"), img.last, p);
  img.last = p;
  redraw();
}

function paintEnd() { img.drawing = false; }

function clearMask() { if (img.mask) { img.mask.getContext("2d").clearRect(0, 0, img.mask.width, img.mask.height); redraw(); } }

function invertMask() {
  if (!img.mask) return;
  var ctx = img.mask.getContext("2d"), d = ctx.getImageData(0, 0, img.mask.width, img.mask.height);
  for (var i = 0; i < d.data.length; i += 4) {
    var painted = d.data[i + 3] >= 128;
    d.data[i] = 255; d.data[i + 1] = 64; d.data[i + 2] = 64; d.data[i + 3] = painted ? 0 : 255;
  }
  ctx.putImageData(d, 0, 0);
  redraw();
}

var b64 = function (canvas) { return canvas.toDataURL("image/png").replace(/^data:image\\/png;base64,/, ""); };

// the A1111 request: img2img, with the mask when anything is painted or the canvas is extended
function imageRequest(form) {
  var body = {
    prompt: form.prompt, negative_prompt: form.negative_prompt, seed: form.seed, batch_size: form.n,
    init_images: [b64(paddedImage())], denoising_strength: Number($("strength").value)
  };
  if (form.preset) body.preset = form.preset;
  else { body.steps = form.steps; body.cfg_scale = form.guidance_scale; if (form.scheduler) body.sampler_name = form.scheduler; }
  var mask = paddedMask();
  if (mask) {
    body.mask = b64(mask);
    body.mask_blur = Number($("mask-blur").value);
    body.inpainting_fill = Number($("fill").value);
    body.inpaint_full_res = $("only-masked").checked;
    body.inpaint_full_res_padding = 32;
    body.inpainting_mask_invert = 0;
  }
  return pickersApply(body, false);
}

async function pollProgress(state) {
  while (!state.done) {
    await new Promise(function (r) { setTimeout(r, 400); });
    if (state.done) return;
    try {
      var p = await (await fetch("/sdapi/v1/progress")).json();
      if (state.done) return;
      if (p.state && p.state.sampling_steps) setProgress(p.state.sampling_step, p.state.sampling_steps, p.eta_relative);
      if (p.current_image) { $("preview").src = "data:image/png;base64," + p.current_image; $("preview").classList.remove("hidden"); }
    } catch (e) { /* the answer will tell */ }
  }
}

async function generateImage(form) {
  if (!img.source) { setStatus("pick an image first"); return; }
  var request;
  try { request = imageRequest(form); } catch (e) { setStatus(e.message); return; }
  postA1111("/sdapi/v1/img2img", request, form);
}

// an A1111 request (img2img, or txt2img with what only that API takes: hires fix, model, VAE), followed by polling its progress
async function postA1111(path, body, form) {
  var state = { done: false };
  current = { a1111: true, source: { close: function () {} } };
  var me = current;
  busy(true);
  setProgress(0, 1, 0, "sending…");
  var t0 = performance.now(), res, data;
  pollProgress(state);
  try {
    res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    data = await res.json();
  } catch (e) {
    state.done = true; end(); setProgress(0, 1, 0, ""); setStatus("cannot reach the server: " + e.message); return;
  }
  state.done = true;
  end();
  if (!res.ok) { setProgress(0, 1, 0, ""); setStatus((data && data.error && data.error.message) || ("error " + res.status)); return; }
  var info = JSON.parse(data.info);
  var urls = data.images.map(function (s) { return "data:image/png;base64," + s; });
  // A1111's interrupt answers with the image so far: keep it, but say it was cancelled
  if (me.stopped) showCancelled("cancelled · kept the image so far");
  else setProgress(1, 1, 0, "done in " + ((performance.now() - t0) / 1000).toFixed(1) + " s · seed " + info.seed);
  if (urls.length) { $("preview").src = urls[0]; $("preview").classList.remove("hidden"); }
  addCard({
    seed: info.seed,
    params: { prompt: form.prompt, negative_prompt: form.negative_prompt, seed: info.seed, steps: form.steps, guidance_scale: form.guidance_scale, scheduler: form.scheduler, n: form.n, preset: form.preset, width: body.width, height: body.height },
    result: { images: urls.map(function (u) { return { url: u }; }), seeds: info.all_seeds, infotexts: info.infotexts, width: info.width, height: info.height }
  });
  loadHistory(true);
}

// a result as the next init image (margins and mask start over)
async function editResult(url) {
  // the page's Content-Security-Policy lets fetch reach only the server: a data: URL is decoded here
  var blob = /^data:/.test(url)
    ? new Blob([Uint8Array.from(atob(url.slice(url.indexOf(",") + 1)), function (c) { return c.charCodeAt(0); })], { type: "image/png" })
    : await (await fetch(url)).blob();
  $("mode-img").checked = true; onModeChange();
  ["pad-left", "pad-top", "pad-right", "pad-bottom"].forEach(function (id) { $(id).value = 0; });
  await loadImage(blob);
}

function initImageMode() {
  document.querySelectorAll('input[name="mode"]').forEach(function (r) { r.addEventListener("change", onModeChange); });
  $("init-file").addEventListener("change", function () { if ($("init-file").files[0]) loadImage($("init-file").files[0]); });
  var drop = $("drop");
  drop.addEventListener("dragover", function (e) { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
  drop.addEventListener("drop", function (e) {
    e.preventDefault(); drop.classList.remove("over");
    var f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) loadImage(f);
  });
  var c = $("canvas");
  c.addEventListener("pointerdown", paintStart);
  c.addEventListener("pointermove", paintMove);
  window.addEventListener("pointerup", paintEnd);
  $("brush").addEventListener("input", function () { $("brush-value").textContent = $("brush").value; });
  $("strength").addEventListener("input", function () { $("strength-value").textContent = Number($("strength").value).toFixed(2); });
  $("clear-mask").addEventListener("click", clearMask);
  $("invert-mask").addEventListener("click", invertMask);
  ["pad-left", "pad-top", "pad-right", "pad-bottom"].forEach(function (id) { $(id).addEventListener("input", redraw); });
}
`;
