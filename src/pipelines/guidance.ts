/**
 * Classifier-free guidance on the UNet output of the batch [negative..., positive...], in float32
 * steps as torch computes it, and diffusers' rescale_noise_cfg (guidance_rescale, arXiv 2305.08891 §3.4).
 */
const f = Math.fround;

/** uncond + scale * (text - uncond) for the two halves of `noisePred`. */
export function applyGuidance(noisePred: Float32Array, scale: number, rescale = 0, batch = 1): Float32Array {
  const half = noisePred.length / 2;
  const s = f(scale);
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const u = noisePred[i], t = noisePred[half + i];
    out[i] = u + f(s * f(t - u));
  }
  return rescale > 0 ? rescaleNoiseCfg(out, noisePred.subarray(half), rescale, batch) : out;
}

/**
 * Perturbed-attention guidance (diffusers' PAGMixin._apply_perturbed_attention_guidance) on the UNet
 * output of the batch [negative..., positive..., perturbed...] (no negative block when `cfgScale` is
 * undefined): uncond + cfg·(text - uncond) + pag·(text - perturbed), or text + pag·(text - perturbed);
 * then the rescale against the text prediction under CFG, as diffusers' PAG pipelines do.
 */
export function applyPerturbedGuidance(noisePred: Float32Array, cfgScale: number | undefined, pagScale: number, rescale = 0, batch = 1): Float32Array {
  const cfg = cfgScale !== undefined;
  const n = noisePred.length / (cfg ? 3 : 2);
  const text = noisePred.subarray(cfg ? n : 0, cfg ? 2 * n : n), perturbed = noisePred.subarray(cfg ? 2 * n : n);
  const g = f(cfgScale ?? 0), p = f(pagScale);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = text[i];
    const base = cfg ? noisePred[i] + f(g * f(t - noisePred[i])) : t;
    out[i] = f(base) + f(p * f(t - perturbed[i]));
  }
  return cfg && rescale > 0 ? rescaleNoiseCfg(out, text, rescale, batch) : out;
}

/**
 * A1111's composable diffusion (CFGDenoiser.combine_denoised) on the UNet output of the batch
 * [negative..., sub-prompt 1..., ..., sub-prompt k...]: uncond + Σ (cond_i - uncond)·(w_i·cfg), in
 * A1111's order of operations (it combines denoised x0 predictions; the same affine sum of noise predictions).
 */
export function applyComposableGuidance(noisePred: Float32Array, cfgScale: number, weights: readonly number[]): Float32Array {
  const n = noisePred.length / (1 + weights.length);
  const out = noisePred.slice(0, n);
  weights.forEach((w, j) => {
    const s = f(f(w) * f(cfgScale)), cond = noisePred.subarray((1 + j) * n, (2 + j) * n);
    for (let i = 0; i < n; i++) out[i] = f(out[i] + f(f(cond[i] - noisePred[i]) * s));
  });
  return out;
}

/** diffusers' _get_pag_scale: pag_scale, or with an adaptive scale max(0, pag_scale - adaptive·(1000 - t)). */
export function pagScaleAt(pag: { scale: number; adaptiveScale: number }, t: number): number {
  if (!(pag.adaptiveScale > 0 && pag.scale > 0)) return pag.scale;
  return Math.max(0, f(pag.scale - f(pag.adaptiveScale * f(1000 - t))));
}

/** Unbiased standard deviation (torch.std's default) of each of `batch` equal chunks. */
function stdPerSample(x: Float32Array, batch: number): number[] {
  const n = x.length / batch;
  return Array.from({ length: batch }, (_, b) => {
    let mean = 0;
    for (let i = b * n; i < (b + 1) * n; i++) mean += x[i];
    mean /= n;
    let ss = 0;
    for (let i = b * n; i < (b + 1) * n; i++) ss += (x[i] - mean) ** 2;
    return Math.sqrt(ss / (n - 1));
  });
}

/** Rescales each sample of the guided prediction to the text prediction's std, mixed by `rescale`. */
export function rescaleNoiseCfg(cfg: Float32Array, text: Float32Array, rescale: number, batch: number): Float32Array {
  const stdText = stdPerSample(text, batch), stdCfg = stdPerSample(cfg, batch);
  const n = cfg.length / batch;
  const r = f(rescale);
  return cfg.map((v, i) => {
    const b = Math.floor(i / n);
    const rescaled = f(v * f(stdText[b] / stdCfg[b]));
    return f(r * rescaled) + f(f(1 - r) * v);
  });
}

/**
 * LCM's guidance-scale embedding (diffusers get_guidance_scale_embedding, from VDM): w·1000 against
 * exp(-i·ln(10000)/(half-1)) frequencies, [sin, cos] (zero-padded to an odd dim). The pipelines pass
 * w = guidance_scale - 1 as the UNet's timestep_cond.
 *
 * Computed in torch's float32 steps: each frequency, w·1000 and their product are rounded to float32,
 * then sin/cos of that float32 argument are taken in float64 and stored as float32. The arguments
 * reach 7000 rad (guidance 8), where one float32 ulp of a frequency moves them by ~4e-4 rad, and
 * torch's float32 exp is one ulp off for some frequencies, so this equals torch's values only to
 * ~5e-4 (4.6e-4 measured against diffusers 0.27.2 at w = 7, 3e-5 at w = 0.5; a float64 evaluation is
 * as far, 4.1e-4). The UNet outputs and latents barely feel it (see test/lcm-fixture.test.ts).
 */
export function guidanceScaleEmbedding(w: number, dim: number): Float32Array {
  const half = Math.floor(dim / 2);
  const ww = f(f(w) * 1000);
  const step = f(f(Math.log(10000)) / (half - 1));
  const out = new Float32Array(dim);
  for (let i = 0; i < half; i++) {
    const freq = f(Math.exp(f(i * -step)));
    const x = f(ww * freq);
    out[i] = Math.sin(x);
    out[half + i] = Math.cos(x);
  }
  return out;
}
