/**
 * The web page served at `/`: one self-contained HTML document (no build step, no outside
 * resources). It queues jobs with POST /v1/jobs, follows them over server-sent events (progress
 * bar, steps, time left, live latent previews) and keeps a gallery of results with their
 * parameters, downloads and "reuse these settings". With --lora-dir, a LoRA picker adds
 * `<lora:NAME:1>` tags to the prompt; with embeddings (--embeddings-dir), a picker adds a name to the
 * prompt box last focused; with --fast, a "Fast" checkbox sends `preset: "fast"` and greys
 * the steps, guidance and scheduler it replaces. An image-to-image / inpainting mode (web-page-image.ts)
 * paints a mask over an image and sends it to /sdapi/v1/img2img. Keeping the page open: the history of the
 * server's images (web-history.ts), every client's queue (web-queue.ts), a lightbox (web-lightbox.ts), and
 * the A1111-only pickers, hires fix and PNG drop (web-pickers.ts). Laid out for phones as well as desktops.
 * (The embedded script avoids template literals so that this file can hold it in one.)
 */
import { FAST_JOB } from "./fast-request.js";
import { IMAGE_CSS, IMAGE_HTML, IMAGE_SCRIPT } from "./web-page-image.js";
import { CONTROLNET_CSS, CONTROLNET_HTML, CONTROLNET_SCRIPT } from "./web-controlnet.js";
import { HISTORY_CSS, HISTORY_HTML, HISTORY_SCRIPT } from "./web-history.js";
import { QUEUE_CSS, QUEUE_HTML, QUEUE_SCRIPT } from "./web-queue.js";
import { LIGHTBOX_CSS, LIGHTBOX_HTML, LIGHTBOX_SCRIPT } from "./web-lightbox.js";
import { PICKERS_CSS, PICKERS_HTML, PICKERS_SCRIPT } from "./web-pickers.js";
import { EXTRAS_HTML, EXTRAS_SCRIPT } from "./web-extras.js";

export const SDXL_BUCKETS: readonly [number, number][] = [
  [1024, 1024], [1152, 896], [896, 1152], [1216, 832], [832, 1216], [1344, 768], [768, 1344], [1536, 640], [640, 1536],
];

const CSS = `
:root { color-scheme: light dark; --bg: #f6f7f9; --fg: #1b1d22; --muted: #667085; --card: #ffffff; --line: #d9dde3; --accent: #3b5bdb; --accent-fg: #fff; --bad: #c92a2a; }
@media (prefers-color-scheme: dark) { :root { --bg: #121317; --fg: #e7e9ee; --muted: #9aa3b2; --card: #1c1e24; --line: #2e323b; --accent: #748ffc; --accent-fg: #0b0c10; --bad: #ff8787; } }
* { box-sizing: border-box; }
html, body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; align-items: baseline; gap: .75rem; flex-wrap: wrap; padding: .8rem 1rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.15rem; margin: 0; }
header .model { color: var(--muted); font-size: .9rem; overflow-wrap: anywhere; }
main { display: grid; grid-template-columns: minmax(280px, 400px) minmax(0, 1fr); gap: 1rem; padding: 1rem; max-width: 1400px; margin: 0 auto; }
@media (max-width: 760px) { main { grid-template-columns: minmax(0, 1fr); padding: .6rem; } }
form, .panel { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: .9rem; }
form { display: flex; flex-direction: column; gap: .7rem; align-self: start; }
label { display: flex; flex-direction: column; gap: .25rem; font-size: .85rem; color: var(--muted); }
textarea, input, select, button { font: inherit; font-size: 16px; color: var(--fg); background: var(--bg); border: 1px solid var(--line); border-radius: 7px; padding: .5rem .6rem; min-width: 0; width: 100%; }
textarea { resize: vertical; min-height: 4.5rem; }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: .6rem; }
.seed { display: grid; grid-template-columns: 1fr auto; gap: .4rem; }
.seed button { width: auto; padding: .5rem .7rem; }
button { cursor: pointer; }
button.primary { background: var(--accent); color: var(--accent-fg); border-color: var(--accent); font-weight: 600; padding: .7rem; }
button:disabled, input:disabled, select:disabled { opacity: .55; cursor: default; }
label.check { flex-direction: row; align-items: center; gap: .5rem; color: var(--fg); font-size: .95rem; }
label.check input { width: auto; margin: 0; }
.actions { display: flex; gap: .5rem; }
.actions .primary { flex: 1; }
.actions #cancel { width: auto; }
#dice svg { width: 1.3em; height: 1.3em; display: block; }
.hidden { display: none !important; }
.current { display: grid; gap: .6rem; }
.bar { height: 12px; border-radius: 6px; background: var(--bg); border: 1px solid var(--line); overflow: hidden; }
.fill { height: 100%; width: 0%; background: var(--accent); transition: width .15s linear; }
#progress-text { font-size: .9rem; color: var(--muted); font-variant-numeric: tabular-nums; min-height: 1.3em; }
#progress-text.cancelled { color: var(--fg); font-weight: 600; }
#status { color: var(--bad); font-size: .9rem; min-height: 1.3em; overflow-wrap: anywhere; }
#preview { width: auto; min-width: min(100%, 256px); max-width: 100%; aspect-ratio: auto; border-radius: 8px; border: 1px solid var(--line); image-rendering: auto; background: var(--bg); }
.results { display: flex; flex-direction: column; gap: 1rem; min-width: 0; }
#gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 1rem; }
@media (max-width: 760px) { #gallery { grid-template-columns: minmax(0, 1fr); } }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; display: flex; flex-direction: column; }
.card .images { display: grid; grid-template-columns: repeat(auto-fit, minmax(110px, 1fr)); gap: 2px; background: var(--line); }
.card img { width: 100%; height: auto; display: block; background: var(--bg); image-rendering: auto; }
.card .meta { padding: .6rem .7rem; display: grid; gap: .5rem; }
.card pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; color: var(--muted); max-height: 9rem; overflow: auto; }
.card .buttons { display: flex; flex-wrap: wrap; gap: .4rem; }
.card .buttons a, .card .buttons button { width: auto; font-size: .85rem; padding: .35rem .6rem; border: 1px solid var(--line); border-radius: 7px; color: var(--fg); background: var(--bg); text-decoration: none; }
.empty { color: var(--muted); font-size: .9rem; }
${CONTROLNET_CSS}${HISTORY_CSS}${QUEUE_CSS}${LIGHTBOX_CSS}${PICKERS_CSS}`;

const SCRIPT = `
"use strict";
var BUCKETS = ${JSON.stringify(SDXL_BUCKETS)};
var $ = function (id) { return document.getElementById(id); };
var current = null; // { id, source, started }
var defaultSize = 1024;
var FAST = ${JSON.stringify(FAST_JOB)};
var beforeFast = null; // the steps, guidance and scheduler the Fast checkbox covered

function ratio(w, h) {
  var g = function (a, b) { return b ? g(b, a % b) : a; };
  var d = g(w, h); var r = (w / d) + ":" + (h / d);
  return ({ "1:1": "1:1", "9:7": "9:7", "7:9": "7:9", "19:13": "19:13", "13:19": "13:19", "7:4": "7:4", "4:7": "4:7", "12:5": "12:5", "5:12": "5:12" })[r] || r;
}

function option(select, value, text) {
  var o = document.createElement("option"); o.value = value; o.textContent = text; select.appendChild(o); return o;
}

function setStatus(text) { $("status").textContent = text || ""; }

function setProgress(step, total, eta, label) {
  $("progress-text").classList.remove("cancelled");
  var pct = total ? Math.round(100 * step / total) : 0;
  $("progress-fill").style.width = pct + "%";
  $("progress").setAttribute("aria-valuenow", String(pct));
  if (label !== undefined) { $("progress-text").textContent = label; return; }
  var left = eta > 0 ? " · " + (eta >= 60 ? Math.floor(eta / 60) + " min " + Math.round(eta % 60) + " s" : eta.toFixed(eta < 10 ? 1 : 0) + " s") + " left" : "";
  $("progress-text").textContent = "step " + step + "/" + total + left;
}

function sizeValue() {
  var v = $("size").value;
  if (v === "custom") return [Number($("width").value), Number($("height").value)];
  var p = v.split("x"); return [Number(p[0]), Number(p[1])];
}

function setSize(w, h) {
  var v = w + "x" + h;
  var found = Array.prototype.some.call($("size").options, function (o) { return o.value === v; });
  $("size").value = found ? v : "custom";
  $("width").value = w; $("height").value = h;
  onSizeChange();
}

function onSizeChange() {
  var custom = $("size").value === "custom";
  $("custom-size").classList.toggle("hidden", !custom);
}

function readForm() {
  var size = sizeValue();
  var seed = $("seed").value.trim();
  var body = {
    prompt: $("prompt").value,
    negative_prompt: $("negative").value,
    steps: Number($("steps").value),
    guidance_scale: Number($("guidance").value),
    seed: seed === "" ? -1 : Number(seed),
    width: size[0], height: size[1],
    n: Number($("count").value)
  };
  if ($("scheduler").value) body.scheduler = $("scheduler").value;
  // the preset's own steps, guidance and sampler apply (explicit fields would win over it)
  if ($("fast").checked) { body.preset = "fast"; delete body.steps; delete body.guidance_scale; delete body.scheduler; }
  var controlnets = cnUnits();
  if (controlnets) body.controlnets = controlnets;
  return pickersApplyNative(extrasApplyNative(body));
}

function hasOption(select, value) {
  return Array.prototype.some.call(select.options, function (o) { return o.value === value; });
}

// checked: the inputs the preset replaces are greyed and show its values; unchecked: the user's come back
function onFastChange() {
  var on = $("fast").checked;
  ["steps", "guidance", "scheduler"].forEach(function (id) { $(id).disabled = on; });
  if (on && !beforeFast) {
    beforeFast = { steps: $("steps").value, guidance: $("guidance").value, scheduler: $("scheduler").value };
    $("steps").value = FAST.steps; $("guidance").value = FAST.guidanceScale;
    if (hasOption($("scheduler"), FAST.scheduler)) $("scheduler").value = FAST.scheduler;
  } else if (!on && beforeFast) {
    $("steps").value = beforeFast.steps; $("guidance").value = beforeFast.guidance; $("scheduler").value = beforeFast.scheduler;
    beforeFast = null;
  }
}

// A1111-style: picking a LoRA adds its <lora:NAME:1> tag to the prompt (edit the weight there)
function addLoraTag() {
  var name = $("lora").value;
  if (!name) return;
  var p = $("prompt").value.trimEnd();
  $("prompt").value = (p ? p + " " : "") + "<lora:" + name + ":1>";
  $("lora").value = "";
  $("prompt").focus();
}

// an embedding's name goes into the prompt box last focused (the negative prompt, where most SDXL embeddings go, or the prompt)
var promptBox = "negative";
function addEmbedding() {
  var name = $("embedding").value;
  if (!name) return;
  var box = $(promptBox), p = box.value.trimEnd();
  box.value = (p ? p + ", " : "") + name;
  $("embedding").value = "";
  box.focus();
}

function busy(on) {
  $("generate").disabled = on;
  $("cancel").classList.toggle("hidden", !on);
}

async function generate(ev) {
  if (ev) ev.preventDefault();
  if (current) return;
  setStatus("");
  var body;
  try { body = readForm(); } catch (e) { setStatus(e.message); return; }
  if (isImageMode()) { generateImage(body); return; }
  // hires fix, schedule type or VAE: only A1111's txt2img takes them
  if (pickersUsed()) {
    if (body.controlnets) { setStatus("ControlNet goes with the plain settings only: turn off the hires fix, schedule type and VAE choices"); return; }
    var request;
    try { request = txt2imgRequest(body); } catch (e) { setStatus(e.message); return; }
    postA1111("/sdapi/v1/txt2img", request, body); return;
  }
  busy(true);
  setProgress(0, 1, 0, "sending…");
  var res, data;
  try {
    res = await fetch("/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    data = await res.json();
  } catch (e) {
    busy(false); setProgress(0, 1, 0, ""); setStatus("cannot reach the server: " + e.message); return;
  }
  if (!res.ok) {
    busy(false); setProgress(0, 1, 0, "");
    setStatus((data && data.error && data.error.message) || ("error " + res.status));
    return;
  }
  follow(data.id, body);
}

function follow(id, body) {
  var source = new EventSource("/v1/jobs/" + encodeURIComponent(id) + "/events");
  current = { id: id, source: source, body: body };
  $("preview").classList.add("hidden");
  source.addEventListener("queued", function (e) {
    var d = JSON.parse(e.data);
    setProgress(0, 1, 0, d.position > 0 ? "queued: " + d.position + " ahead" : "starting…");
  });
  source.addEventListener("started", function () { setProgress(0, 1, 0, "starting…"); });
  source.addEventListener("state", function (e) {
    var d = JSON.parse(e.data);
    if (d.status === "queued") setProgress(0, 1, 0, "queued");
    else if (d.status === "running" && d.total_steps) setProgress(d.step, d.total_steps, d.eta_seconds);
  });
  source.addEventListener("step", function (e) {
    var d = JSON.parse(e.data);
    setProgress(d.step, d.total_steps, d.eta_seconds);
    if (d.preview) { $("preview").src = d.preview; $("preview").classList.remove("hidden"); }
  });
  source.addEventListener("done", function (e) {
    var d = JSON.parse(e.data);
    end();
    setProgress(1, 1, 0, "done in " + d.result.seconds.toFixed(1) + " s · seed " + d.seed);
    if (d.result.images.length) { $("preview").src = d.result.images[0].url; $("preview").classList.remove("hidden"); }
    addCard(d);
    loadHistory(true);
  });
  source.addEventListener("failed", function (e) {
    var d = JSON.parse(e.data);
    end();
    // a cancel is what the user asked for: a plain "cancelled", not an error
    if (d.error && d.error.code && /^job_(cancelled|interrupted)$/.test(d.error.code)) { showCancelled("cancelled"); return; }
    setProgress(0, 1, 0, "");
    setStatus(d.error ? d.error.message : "the job failed");
  });
}

function showCancelled(text) {
  setProgress(0, 1, 0, text);
  $("progress-text").classList.add("cancelled");
}

function end() {
  if (current) current.source.close();
  current = null;
  busy(false);
  refreshQueue(); // the finished job leaves the queue view now, not at the next poll
}

async function cancel() {
  if (!current) return;
  // an A1111 request answers with what it made so far
  current.stopped = true;
  if (current.a1111) { try { await fetch("/sdapi/v1/interrupt", { method: "POST" }); } catch (e) { setStatus(e.message); } return; }
  try { await fetch("/v1/jobs/" + encodeURIComponent(current.id), { method: "DELETE" }); } catch (e) { setStatus(e.message); }
}

function addCard(job) {
  var tpl = $("card-template").content.firstElementChild.cloneNode(true);
  var images = tpl.querySelector(".images");
  job.result.images.forEach(function (im, i) {
    var img = document.createElement("img");
    img.src = im.url; img.alt = job.params.prompt; img.width = job.result.width; img.height = job.result.height;
    img.loading = "lazy";
    images.appendChild(img);
    var a = document.createElement("a");
    a.href = im.url; a.download = "ssd1b-" + job.result.seeds[i] + (job.result.images.length > 1 ? "-" + i : "") + ".png";
    a.textContent = job.result.images.length > 1 ? "Download " + (i + 1) : "Download";
    a.className = "download";
    tpl.querySelector(".buttons").appendChild(a);
  });
  tpl.querySelector("pre").textContent = job.result.infotexts[0] || "";
  tpl.querySelector(".reuse").addEventListener("click", function () { reuse(job.params); });
  if (job.result.images.length) tpl.querySelector(".edit").addEventListener("click", function () { editResult(job.result.images[0].url); });
  $("gallery").prepend(tpl);
  $("empty").classList.add("hidden");
}

function reuse(p) {
  var fast = p.preset === "fast" && !$("fast-toggle").classList.contains("hidden");
  $("fast").checked = fast;
  onFastChange();
  $("prompt").value = p.prompt || "";
  $("negative").value = p.negative_prompt || "";
  $("seed").value = p.seed;
  if (p.width && p.height) setSize(p.width, p.height);
  if (!fast) {
    $("steps").value = p.steps;
    $("guidance").value = p.guidance_scale;
    var s = p.scheduler || "";
    $("scheduler").value = hasOption($("scheduler"), s) ? s : "";
  }
  $("count").value = p.n || 1;
  extrasReuse(p);
  window.scrollTo({ top: 0, behavior: "smooth" });
}

async function init() {
  $("form").addEventListener("submit", generate);
  $("cancel").addEventListener("click", cancel);
  $("size").addEventListener("change", onSizeChange);
  $("lora").addEventListener("change", addLoraTag);
  $("embedding").addEventListener("change", addEmbedding);
  ["prompt", "negative"].forEach(function (id) { $(id).addEventListener("focus", function () { promptBox = id; }); });
  $("fast").addEventListener("change", onFastChange);
  initImageMode();
  $("dice").addEventListener("click", function () { $("seed").value = String(Math.floor(Math.random() * 4294967295)); });
  $("prompt").addEventListener("keydown", function (e) { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) generate(e); });
  try {
    var health = await (await fetch("/health")).json();
    $("model").textContent = health.model.name + " · " + health.mode;
    if (health.model.default_size) defaultSize = health.model.default_size;
    $("steps").value = health.defaults.steps; $("guidance").value = health.defaults.guidance_scale;
    $("steps").max = health.limits.max_steps; $("count").max = health.limits.max_images;
    $("width").max = $("height").max = health.limits.max_side;
    $("fast-toggle").classList.toggle("hidden", (health.presets || []).indexOf("fast") < 0);
  } catch (e) { setStatus("cannot reach the server"); }
  var size = $("size");
  var isBucket = BUCKETS.some(function (b) { return b[0] === defaultSize && b[1] === defaultSize; });
  if (!isBucket) option(size, defaultSize + "x" + defaultSize, defaultSize + " × " + defaultSize + " (model default)");
  BUCKETS.forEach(function (b) { option(size, b[0] + "x" + b[1], b[0] + " × " + b[1] + " (" + ratio(b[0], b[1]) + ")"); });
  option(size, "custom", "custom…");
  size.value = defaultSize + "x" + defaultSize;
  $("width").value = $("height").value = defaultSize;
  onSizeChange();
  try {
    var samplers = await (await fetch("/sdapi/v1/samplers")).json();
    samplers.forEach(function (s) { option($("scheduler"), s.name, s.name); });
  } catch (e) { /* the model's own scheduler stays */ }
  try {
    var loras = await (await fetch("/sdapi/v1/loras")).json();
    loras.forEach(function (l) { option($("lora"), l.name, l.name); });
    $("lora-picker").classList.toggle("hidden", loras.length === 0);
  } catch (e) { /* no picker */ }
  try {
    var embeddings = Object.keys((await (await fetch("/sdapi/v1/embeddings")).json()).loaded || {});
    embeddings.forEach(function (n) { option($("embedding"), n, n); });
    $("embedding-picker").classList.toggle("hidden", embeddings.length === 0);
  } catch (e) { /* no picker */ }
  await cnInit();
  await initPickers();
  initLightbox();
  await initHistory();
  pollQueue();
  document.body.dataset.ready = "1";
}

${IMAGE_SCRIPT}
${CONTROLNET_SCRIPT}
${HISTORY_SCRIPT}
${QUEUE_SCRIPT}
${LIGHTBOX_SCRIPT}
${PICKERS_SCRIPT}
${EXTRAS_SCRIPT}
init();
`;

export const WEB_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ssd1b</title>
<style>${CSS}${IMAGE_CSS}</style>
</head>
<body>
<header><h1>ssd1b</h1><span class="model" id="model">…</span></header>
<main>
  <form id="form" autocomplete="off">
${IMAGE_HTML}
    <label>Prompt<textarea id="prompt" rows="3" required placeholder="an astronaut riding a green horse"></textarea></label>
    <label>Negative prompt<textarea id="negative" rows="2" placeholder="ugly, blurry, poor quality"></textarea></label>
    <label id="lora-picker" class="hidden">LoRA<select id="lora"><option value="">add a LoRA to the prompt…</option></select></label>
    <label id="embedding-picker" class="hidden">Embedding<select id="embedding" title="goes into the prompt box last clicked (the negative prompt by default)"><option value="">add an embedding…</option></select></label>
    <label id="fast-toggle" class="check hidden"><input id="fast" type="checkbox"> Fast (LCM, 4 steps)</label>
${CONTROLNET_HTML}
    <div class="row">
      <label>Steps<input id="steps" type="number" min="1" max="1000" step="1" value="25" inputmode="numeric"></label>
      <label>Guidance<input id="guidance" type="number" min="0" max="100" step="0.5" value="5" inputmode="decimal"></label>
    </div>
    <label>Seed
      <span class="seed"><input id="seed" type="number" min="-1" step="1" placeholder="random" inputmode="numeric"><button type="button" id="dice" title="Random seed" aria-label="Random seed"><svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="1.8" aria-hidden="true"><rect x="3" y="3" width="18" height="18" rx="4"/><circle cx="8" cy="8" r="1.3" fill="currentColor"/><circle cx="16" cy="8" r="1.3" fill="currentColor"/><circle cx="12" cy="12" r="1.3" fill="currentColor"/><circle cx="8" cy="16" r="1.3" fill="currentColor"/><circle cx="16" cy="16" r="1.3" fill="currentColor"/></svg></button></span>
    </label>
${EXTRAS_HTML}    <label>Size<select id="size"></select></label>
    <div class="row hidden" id="custom-size">
      <label>Width<input id="width" type="number" min="8" max="2048" step="8" inputmode="numeric"></label>
      <label>Height<input id="height" type="number" min="8" max="2048" step="8" inputmode="numeric"></label>
    </div>
    <div class="row">
      <label>Sampler<select id="scheduler"><option value="">model default</option></select></label>
      <label>Images<input id="count" type="number" min="1" max="8" step="1" value="1" inputmode="numeric"></label>
    </div>
${PICKERS_HTML}    <div class="actions">
      <button class="primary" id="generate" type="submit">Generate</button>
      <button type="button" id="cancel" class="hidden">Cancel</button>
    </div>
  </form>
  <section class="results">
    <div class="panel current">
      <div class="bar" id="progress" role="progressbar" aria-label="progress" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0"><div class="fill" id="progress-fill"></div></div>
      <div id="progress-text"></div>
      <div id="status" role="alert"></div>
      <img id="preview" class="hidden" alt="live preview">
    </div>
${QUEUE_HTML}
    <p class="empty" id="empty">Results appear here.</p>
    <div id="gallery"></div>
${HISTORY_HTML}
  </section>
</main>
${LIGHTBOX_HTML}
<template id="card-template"><article class="card"><div class="images"></div><div class="meta"><pre></pre><div class="buttons"><button type="button" class="reuse">Reuse these settings</button><button type="button" class="edit">Edit this image</button></div></div></article></template>
<script>${SCRIPT}</script>
</body>
</html>
`;
