/**
 * The web page's ControlNet panel (shown when --controlnet-dir lists nets): a net from
 * /controlnet/model_list, a control image dropped or picked, preprocessor none or canny with its
 * thresholds and a preview through /controlnet/detect, scale and step window. The job gets them as
 * one `controlnets` unit; canny runs at the output size (pixel_perfect), as the preview does.
 * (No template literals in the script: it is embedded in one.)
 */

export const CONTROLNET_CSS = `
.cn { border: 1px solid var(--line); border-radius: 8px; padding: .5rem .7rem; }
.cn summary { cursor: pointer; color: var(--fg); }
.cn > div, .cn > label, .cn > button, .cn > img { margin-top: .55rem; }
.cn-drop { border: 2px dashed var(--line); border-radius: 8px; padding: .8rem; text-align: center; color: var(--muted); font-size: .9rem; }
.cn-drop.over { border-color: var(--accent); color: var(--fg); }
.cn-drop button { width: auto; padding: .25rem .6rem; font-size: .9rem; }
.cn img { width: 160px; max-width: 100%; height: auto; border-radius: 6px; border: 1px solid var(--line); display: block; }
`;

export const CONTROLNET_HTML = `
    <details id="cn-panel" class="cn hidden"><summary>ControlNet</summary>
      <label>Model<select id="cn-model"><option value="">off</option></select></label>
      <div id="cn-drop" class="cn-drop">Drop a control image here or <button type="button" id="cn-pick">pick one</button><input id="cn-file" type="file" accept="image/png,image/jpeg" class="hidden"></div>
      <img id="cn-image" class="hidden" alt="control image">
      <div class="row">
        <label>Preprocessor<select id="cn-module"><option value="none">none (the image is the map)</option><option value="canny">canny</option></select></label>
        <label>Scale<input id="cn-scale" type="number" min="0" max="2" step="0.05" value="1" inputmode="decimal"></label>
      </div>
      <div class="row hidden" id="cn-thresholds">
        <label>Low threshold<input id="cn-low" type="number" min="1" max="255" step="1" value="100" inputmode="numeric"></label>
        <label>High threshold<input id="cn-high" type="number" min="1" max="255" step="1" value="200" inputmode="numeric"></label>
      </div>
      <div class="row">
        <label>Start<input id="cn-start" type="number" min="0" max="1" step="0.05" value="0" inputmode="decimal"></label>
        <label>End<input id="cn-end" type="number" min="0" max="1" step="0.05" value="1" inputmode="decimal"></label>
      </div>
      <button type="button" id="cn-preview-button" class="hidden">Preview canny</button>
      <img id="cn-preview" class="hidden" alt="canny preview">
    </details>`;

export const CONTROLNET_SCRIPT = `
var cnImage = null; // { base64, width, height }

function cnLoadFile(file) {
  if (!file) return;
  var reader = new FileReader();
  reader.onload = function () {
    var url = String(reader.result);
    var img = $("cn-image");
    img.onload = function () {
      cnImage = { base64: url.slice(url.indexOf(",") + 1), width: img.naturalWidth, height: img.naturalHeight };
      img.classList.remove("hidden");
      $("cn-preview").classList.add("hidden");
    };
    img.src = url;
  };
  reader.readAsDataURL(file);
}

function cnOnModule() {
  var canny = $("cn-module").value === "canny";
  $("cn-thresholds").classList.toggle("hidden", !canny);
  $("cn-preview-button").classList.toggle("hidden", !canny);
  if (!canny) $("cn-preview").classList.add("hidden");
}

// sd-webui-controlnet's pixel perfect for Crop and Resize: the short side scaled as the output covers the image
function cnResolution(width, height) {
  var k = Math.max(height / cnImage.height, width / cnImage.width);
  return Math.round(k * Math.min(cnImage.width, cnImage.height));
}

async function cnPreview() {
  if (!cnImage) { setStatus("pick a control image first"); return; }
  var size = sizeValue();
  var res = await fetch("/controlnet/detect", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({
    controlnet_module: "canny", controlnet_input_images: [cnImage.base64], controlnet_processor_res: cnResolution(size[0], size[1]),
    controlnet_threshold_a: Number($("cn-low").value), controlnet_threshold_b: Number($("cn-high").value)
  }) });
  var data = await res.json();
  if (!res.ok) { setStatus((data.error && data.error.message) || ("error " + res.status)); return; }
  $("cn-preview").src = "data:image/png;base64," + data.images[0];
  $("cn-preview").classList.remove("hidden");
}

// the job's controlnets field, or null when the panel is off
function cnUnits() {
  var name = $("cn-model").value;
  if (!name || $("cn-panel").classList.contains("hidden")) return null;
  if (!cnImage) throw new Error("ControlNet " + name + ": pick or drop a control image (or set the model to off)");
  var u = { name: name, image: cnImage.base64, module: $("cn-module").value, scale: Number($("cn-scale").value),
    start: Number($("cn-start").value), end: Number($("cn-end").value), pixel_perfect: true };
  if (u.module === "canny") { u.threshold_a = Number($("cn-low").value); u.threshold_b = Number($("cn-high").value); }
  return [u];
}

async function cnInit() {
  var drop = $("cn-drop");
  $("cn-pick").addEventListener("click", function () { $("cn-file").click(); });
  $("cn-file").addEventListener("change", function () { cnLoadFile($("cn-file").files[0]); });
  drop.addEventListener("dragover", function (e) { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
  drop.addEventListener("drop", function (e) { e.preventDefault(); drop.classList.remove("over"); cnLoadFile(e.dataTransfer.files[0]); });
  $("cn-module").addEventListener("change", cnOnModule);
  $("cn-preview-button").addEventListener("click", function () { cnPreview().catch(function (e) { setStatus(e.message); }); });
  try {
    var list = (await (await fetch("/controlnet/model_list")).json()).model_list || [];
    list.forEach(function (n) { option($("cn-model"), n, n); });
    $("cn-panel").classList.toggle("hidden", list.length === 0);
  } catch (e) { /* no panel */ }
}
`;
