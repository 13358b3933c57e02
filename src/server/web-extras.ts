/**
 * The web page's variation seed (A1111's subseed / subseed_strength), tiling and clip skip controls.
 * Plain text-to-image sends them to /v1/jobs (variation_seed, variation_strength, tiling, clip_skip);
 * the A1111 paths (image-to-image, hires fix, pickers) send subseed / subseed_strength / tiling, and
 * refuse a clip skip: A1111's clip skip on SDXL changes CLIP-L alone (sdxl_clip_l_skip), not the
 * both-encoder clip skip this control means (diffusers' clip_skip). (No template literals in the script.)
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
`;

export const EXTRAS_SCRIPT = `
function extrasVariation() {
  var strength = Number($("variation-strength").value) || 0;
  var seed = $("variation-seed").value.trim();
  return strength > 0 ? { seed: seed === "" ? -1 : Number(seed), strength: strength } : null;
}

// onto a native /v1/jobs body
function extrasApplyNative(body) {
  var v = extrasVariation();
  if (v) { body.variation_seed = v.seed; body.variation_strength = v.strength; }
  if ($("tiling").checked) body.tiling = true;
  var skip = Number($("clip-skip").value) || 0;
  if (skip > 0) body.clip_skip = skip;
  return body;
}

// onto an A1111 body; a message when the form asks for what that API cannot say
function extrasApplyA1111(body) {
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
}

// from a parameters text: A1111's "Clip skip: N" counts from the last layer (N - 2 here)
function extrasFill(f) {
  $("variation-seed").value = f["Variation seed"] !== undefined ? f["Variation seed"] : "";
  $("variation-strength").value = f["Variation seed strength"] || 0;
  $("tiling").checked = f.Tiling === "True";
  $("clip-skip").value = Math.max(0, (Number(f["Clip skip"]) || 2) - 2);
}
`;
