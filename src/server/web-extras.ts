/**
 * The web page's variation seed (A1111's subseed / subseed_strength), tiling, clip skip, PAG and FreeU controls.
 * Plain text-to-image sends them to /v1/jobs (variation_seed, variation_strength, tiling, clip_skip);
 * the A1111 paths (image-to-image, hires fix, pickers) send subseed / subseed_strength / tiling, and
 * refuse a clip skip: A1111's clip skip on SDXL changes CLIP-L alone (sdxl_clip_l_skip), not the
 * both-encoder clip skip this control means (diffusers' clip_skip). PAG (pag_scale, pag_applied_layers)
 * and FreeU (freeu: true, the SDXL values) go as the native fields on both, which this server's A1111
 * routes take too. (No template literals in the script.)
 */

export const EXTRAS_HTML = `
    <div class="row">
      <label>Variation seed<input id="variation-seed" type="number" min="-1" step="1" placeholder="random" inputmode="numeric"></label>
      <label>Variation strength<input id="variation-strength" type="number" min="0" max="1" step="0.05" value="0" inputmode="decimal"></label>
    </div>
    <div class="row">
      <label>CLIP skip<input id="clip-skip" type="number" min="0" max="11" step="1" value="0" inputmode="numeric" title="layers skipped before SDXL's penultimate one, in both text encoders (diffusers' clip_skip; A1111's and ComfyUI's clip skip N + 2)"></label>
      <label class="check"><input id="tiling" type="checkbox"> Tiling (seamless)</label>
    </div>
    <div class="row">
      <label>PAG scale<input id="pag-scale" type="number" min="0" max="100" step="0.5" value="0" inputmode="decimal" title="perturbed-attention guidance (diffusers' pag_scale; 0: off): one more UNet batch per step"></label>
      <label>PAG layers<input id="pag-layers" type="text" placeholder="mid" title="self-attention layers by name pattern, comma-separated (SDXL: mid; SSD-1B and Vega have none there: up_blocks.0)"></label>
      <label class="check"><input id="freeu" type="checkbox"> FreeU</label>
    </div>
`;

export const EXTRAS_SCRIPT = `
function extrasVariation() {
  var strength = Number($("variation-strength").value) || 0;
  var seed = $("variation-seed").value.trim();
  return strength > 0 ? { seed: seed === "" ? -1 : Number(seed), strength: strength } : null;
}

// PAG and FreeU: the same fields on both APIs
function extrasPatches(body) {
  var pag = Number($("pag-scale").value) || 0;
  if (pag > 0) {
    body.pag_scale = pag;
    var layers = $("pag-layers").value.split(",").map(function (l) { return l.trim(); }).filter(Boolean);
    if (layers.length) body.pag_applied_layers = layers;
  }
  if ($("freeu").checked) body.freeu = true;
  return body;
}

// onto a native /v1/jobs body
function extrasApplyNative(body) {
  extrasPatches(body);
  var v = extrasVariation();
  if (v) { body.variation_seed = v.seed; body.variation_strength = v.strength; }
  if ($("tiling").checked) body.tiling = true;
  var skip = Number($("clip-skip").value) || 0;
  if (skip > 0) body.clip_skip = skip;
  return body;
}

// onto an A1111 body; a message when the form asks for what that API cannot say
function extrasApplyA1111(body) {
  extrasPatches(body);
  var v = extrasVariation();
  if (v) { body.subseed = v.seed; body.subseed_strength = v.strength; }
  if ($("tiling").checked) body.tiling = true;
  if ((Number($("clip-skip").value) || 0) > 0) return "CLIP skip goes with plain text-to-image only (no image, hires fix, schedule type or VAE choice): A1111's API skips CLIP-L's layers alone on SDXL";
  return "";
}

// from a job's params (Reuse these settings)
function extrasReuse(p) {
  $("variation-seed").value = p.variation_seed !== undefined ? p.variation_seed : "";
  $("variation-strength").value = p.variation_strength || 0;
  $("tiling").checked = p.tiling === true;
  $("clip-skip").value = p.clip_skip || 0;
  $("pag-scale").value = p.pag_scale || 0;
  $("pag-layers").value = (p.pag_applied_layers || []).join(", ");
  $("freeu").checked = !!p.freeu;
}

// from a parameters text: A1111's "Clip skip: N" counts from the last layer (N - 2 here)
function extrasFill(f) {
  $("variation-seed").value = f["Variation seed"] !== undefined ? f["Variation seed"] : "";
  $("variation-strength").value = f["Variation seed strength"] || 0;
  $("tiling").checked = f.Tiling === "True";
  $("clip-skip").value = Math.max(0, (Number(f["Clip skip"]) || 2) - 2);
  $("pag-scale").value = f["PAG scale"] || 0;
  $("pag-layers").value = f["PAG layers"] ? f["PAG layers"].split(" ").join(", ") : "";
  $("freeu").checked = f.freeu_enabled === "True";
}
`;
