/**
 * The web page's A1111 settings: model (sd-models; the native job's `model` too) and VAE (sd-vae)
 * pickers sent as override_settings, the refiner (refiner_checkpoint, refiner_switch_at; shown when the
 * server serves several models), the schedule type (schedulers) beside the sampler, and the hires fix (enable_hr,
 * hr_scale, hr_upscaler from latent-upscale-modes + upscalers, hr_second_pass_steps, denoising_strength).
 * A text-to-image job that uses any of them goes to /sdapi/v1/txt2img (the native /v1/jobs has no such
 * fields); image-to-image always goes there. Also: drop a PNG anywhere on the page (or pick one) to read
 * its parameters with /sdapi/v1/png-info and fill the form. The variation seed, tiling and clip
 * skip controls are web-extras.ts. (No template literals in the script.)
 */

export const PICKERS_CSS = `
#hires-panel { display: grid; gap: .6rem; border-left: 3px solid var(--line); padding-left: .6rem; }
body.png-over::after { content: "Drop a PNG to read its parameters"; position: fixed; inset: .5rem; border: 3px dashed var(--accent); border-radius: 12px; display: grid; place-items: center; background: rgba(0, 0, 0, .45); color: #fff; font-size: 1.2rem; pointer-events: none; }
#png-info-file { font-size: .85rem; }
`;

export const PICKERS_HTML = `
    <div class="row">
      <label>Model<select id="sd-model"></select></label>
      <label>VAE<select id="sd-vae"><option value="">Automatic</option></select></label>
    </div>
    <div class="row hidden" id="refiner-row">
      <label>Refiner<select id="refiner"><option value="">None</option></select></label>
      <label>Switch at<input id="refiner-switch-at" type="number" min="0.01" max="0.99" step="0.01" value="0.8" inputmode="decimal" title="the share of the steps the model runs before the refiner"></label>
    </div>
    <label>Schedule type<select id="schedule-type"><option value="">Automatic</option></select></label>
    <label class="check"><input id="enable-hr" type="checkbox"> Hires fix (upscale, then a second pass)</label>
    <div id="hires-panel" class="hidden">
      <div class="row">
        <label>Upscale by<input id="hr-scale" type="number" min="1" max="4" step="0.05" value="2" inputmode="decimal"></label>
        <label>Upscaler<select id="hr-upscaler"></select></label>
      </div>
      <div class="row">
        <label>Hires steps<input id="hr-steps" type="number" min="0" max="1000" step="1" value="0" inputmode="numeric" title="0: as many as the first pass"></label>
        <label>Denoising strength<input id="hr-strength" type="number" min="0" max="1" step="0.05" value="0.7" inputmode="decimal"></label>
      </div>
    </div>
    <label>Read parameters from a PNG<input id="png-info-file" type="file" accept="image/png"></label>
`;

export const PICKERS_SCRIPT = `
var servedModel = ""; // the default model, selected at start

function pickersUsed() {
  return $("enable-hr").checked || $("schedule-type").value !== "" || $("sd-vae").value !== "" || $("refiner").value !== "";
}

// the native job's model: named whenever the server serves several (the default may have moved: POST options)
function pickersApplyNative(body) {
  if ($("sd-model").options.length > 1 && $("sd-model").value) body.model = $("sd-model").value;
  return body;
}

// the A1111 fields of the pickers and extras, onto an A1111 request body (txt2img: hires too); throws what the API cannot say
function pickersApply(body, txt2img) {
  var refused = extrasApplyA1111(body);
  if (refused) throw new Error(refused);
  if ($("schedule-type").value) body.scheduler = $("schedule-type").value;
  var o = {};
  if ($("sd-model").value) o.sd_model_checkpoint = $("sd-model").value;
  if ($("sd-vae").value) o.sd_vae = $("sd-vae").value;
  if (Object.keys(o).length) body.override_settings = o;
  if ($("refiner").value) { body.refiner_checkpoint = $("refiner").value; body.refiner_switch_at = Number($("refiner-switch-at").value); }
  if (txt2img && $("enable-hr").checked) {
    body.enable_hr = true;
    body.hr_scale = Number($("hr-scale").value);
    body.hr_upscaler = $("hr-upscaler").value;
    body.hr_second_pass_steps = Number($("hr-steps").value);
    body.denoising_strength = Number($("hr-strength").value);
  }
  return body;
}

// a text-to-image job the native route cannot express, as A1111's txt2img
function txt2imgRequest(form) {
  var body = { prompt: form.prompt, negative_prompt: form.negative_prompt, seed: form.seed, batch_size: form.n, width: form.width, height: form.height };
  if (form.preset) body.preset = form.preset;
  else { body.steps = form.steps; body.cfg_scale = form.guidance_scale; if (form.scheduler) body.sampler_name = form.scheduler; }
  return pickersApply(body, true);
}

function setSelect(id, value) { if (value !== undefined && hasOption($(id), value)) $(id).value = value; }

// the A1111 fields of a parameters text that these pickers hold
function pickersFill(f) {
  setSelect("schedule-type", f["Schedule type"] === "Automatic" ? "" : f["Schedule type"]);
  // older infotexts (ours too) name the schedule in the sampler: "Euler Karras"
  var s = f.Sampler || "";
  if (s && !hasOption($("scheduler"), s)) Array.prototype.forEach.call($("schedule-type").options, function (o) {
    var sampler = s.slice(0, -(o.value.length + 1));
    if (o.value && s.endsWith(" " + o.value) && hasOption($("scheduler"), sampler)) { $("scheduler").value = sampler; $("schedule-type").value = o.value; }
  });
  $("refiner").value = f.Refiner && hasOption($("refiner"), f.Refiner) ? f.Refiner : "";
  if (f["Refiner switch at"]) $("refiner-switch-at").value = f["Refiner switch at"];
  var hr = f["Hires upscale"] !== undefined || f["Hires upscaler"] !== undefined;
  $("enable-hr").checked = hr; onHiresChange();
  if (hr) {
    if (f["Hires upscale"]) $("hr-scale").value = f["Hires upscale"];
    $("hr-steps").value = f["Hires steps"] || 0;
    setSelect("hr-upscaler", f["Hires upscaler"]);
    if (f["Denoising strength"]) $("hr-strength").value = f["Denoising strength"];
  }
}

function onHiresChange() { $("hires-panel").classList.toggle("hidden", !$("enable-hr").checked); }

async function readPngParameters(file) {
  if (!file || !/png$/i.test(file.type || file.name)) { setStatus("drop a PNG to read its parameters"); return; }
  var data = await new Promise(function (resolve, reject) {
    var r = new FileReader(); r.onload = function () { resolve(String(r.result)); }; r.onerror = reject; r.readAsDataURL(file);
  });
  try {
    var res = await fetch("/sdapi/v1/png-info", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ image: data }) });
    var info = await res.json();
    if (!res.ok) { setStatus((info.error && info.error.message) || ("error " + res.status)); return; }
    if (!info.info) { setStatus("this PNG has no parameters"); return; }
    setStatus("");
    fillFromFields(info.parameters);
    setProgress(0, 1, 0, "parameters read from " + file.name);
  } catch (e) { setStatus("cannot reach the server: " + e.message); }
}

async function initPickers() {
  $("enable-hr").addEventListener("change", onHiresChange);
  $("png-info-file").addEventListener("change", function () { readPngParameters($("png-info-file").files[0]); });
  // a PNG dropped anywhere but on the image and ControlNet drop areas is read for its parameters
  var isOwnDrop = function (e) { return e.target && e.target.closest && e.target.closest("#drop, #image-panel, #cn-panel, [data-drop]"); };
  var hasFile = function (e) { return e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types || [], "Files") >= 0; };
  document.addEventListener("dragover", function (e) { if (!hasFile(e) || isOwnDrop(e)) return; e.preventDefault(); document.body.classList.add("png-over"); });
  document.addEventListener("dragleave", function (e) { if (!e.relatedTarget) document.body.classList.remove("png-over"); });
  document.addEventListener("drop", function (e) {
    document.body.classList.remove("png-over");
    if (isOwnDrop(e) || !hasFile(e)) return;
    e.preventDefault();
    readPngParameters(e.dataTransfer.files[0]);
  });
  var get = async function (path) { try { var r = await fetch(path); return r.ok ? await r.json() : []; } catch (e) { return []; } };
  var lists = await Promise.all(["/sdapi/v1/sd-models", "/sdapi/v1/sd-vae", "/sdapi/v1/schedulers", "/sdapi/v1/latent-upscale-modes", "/sdapi/v1/upscalers"].map(get));
  lists[0].forEach(function (m, i) { option($("sd-model"), m.title, m.model_name || m.title); if (i === 0) servedModel = m.title; });
  // the model new jobs get (POST options may have made another one the default)
  var options = await get("/sdapi/v1/options");
  if (options && hasOption($("sd-model"), options.sd_model_checkpoint)) servedModel = options.sd_model_checkpoint;
  $("sd-model").value = servedModel;
  lists[1].forEach(function (v) { option($("sd-vae"), v.model_name, v.model_name); });
  // a refiner is another served model
  if (lists[0].length > 1) {
    lists[0].forEach(function (m) { option($("refiner"), m.title, m.model_name || m.title); });
    $("refiner-row").classList.remove("hidden");
  }
  lists[2].forEach(function (s) { if (s.label !== "Automatic") option($("schedule-type"), s.label, s.label); });
  lists[3].forEach(function (m) { option($("hr-upscaler"), m.name, m.name); });
  // the pixel upscalers ("None" is no upscaler at all: the latent modes cover that)
  lists[4].forEach(function (u) { if (u.name !== "None" && !hasOption($("hr-upscaler"), u.name)) option($("hr-upscaler"), u.name, u.name); });
}
`;
