/**
 * Perturbed-attention guidance (Ahn et al., "Self-Rectifying Diffusion Sampling with Perturbed-Attention
 * Guidance", 2024), the UNet's half: in the self-attention layers chosen, the last rows of the batch
 * (the perturbed copy of the conditional batch) take the identity attention map, to_out(to_v(x)), as
 * diffusers' PAGCFGIdentitySelfAttnProcessor2_0 / PAGIdentitySelfAttnProcessor2_0 do; the other rows
 * attend as usual. The layers are chosen as diffusers' PAGMixin chooses them: each id is a regular
 * expression searched in the module names ("mid_block.attentions.0.transformer_blocks.0.attn1"), and
 * an id that matches no self-attention layer is an error (SSD-1B and Vega have none in the mid block,
 * so diffusers' default "mid" does not fit them: name others, e.g. "down_blocks.2" or "up_blocks.0").
 */
import type { SelfAttentionVariant } from "../shared/transformer-2d.js";
import type { UNetConfig } from "./config.js";

/** diffusers' default pag_applied_layers for SDXL. */
export const PAG_DEFAULT_LAYERS: readonly string[] = ["mid"];

export interface PagGraphOptions {
  /** diffusers' pag_applied_layers. */
  layers: readonly string[];
  /** The trailing rows of the UNet batch that are perturbed (the images per batch). */
  perturbedRows: number;
}

export class PagLayerError extends Error {}

/** The UNet's self-attention modules (attn1) by name: down blocks, mid block, up blocks. */
export function selfAttentionNames(c: UNetConfig): string[] {
  const names: string[] = [];
  const blocks = (prefix: string, layers: number) => {
    for (let k = 0; k < layers; k++) names.push(`${prefix}.transformer_blocks.${k}.attn1`);
  };
  c.downBlockTypes.forEach((type, i) => {
    if (type !== "CrossAttnDownBlock2D") return;
    for (let j = 0; j < c.layersPerBlock[i]; j++) blocks(`down_blocks.${i}.attentions.${j}`, c.transformerLayersPerBlock[i]);
  });
  if (c.midBlockType === "UNetMidBlock2DCrossAttn") blocks("mid_block.attentions.0", c.midTransformerLayers);
  c.upBlockTypes.forEach((type, i) => {
    if (type !== "CrossAttnUpBlock2D") return;
    const resnets = c.layersPerBlock[c.layersPerBlock.length - 1 - i] + 1;
    for (let j = 0; j < resnets; j++) blocks(`up_blocks.${i}.attentions.${j}`, c.reverseTransformerLayersPerBlock[i][j]);
  });
  return names;
}

/** diffusers' test: re.search(id, name), unless both end in the same number (its is_fake_integral_match). */
export function pagLayerMatches(id: string, name: string): boolean {
  let re: RegExp;
  try { re = new RegExp(id); } catch { throw new PagLayerError(`PAG layer ${JSON.stringify(id)} is not a regular expression`); }
  const a = id.split(".").at(-1)!, b = name.split(".").at(-1)!;
  const fakeIntegral = /^\d+$/.test(a) && /^\d+$/.test(b) && a === b;
  return re.test(name) && !fakeIntegral;
}

/** The self-attention layers `layers` choose; an id choosing none is refused, as diffusers raises. */
export function pagTargets(c: UNetConfig, layers: readonly string[]): Set<string> {
  if (layers.length === 0) throw new PagLayerError("PAG needs at least one layer");
  const names = selfAttentionNames(c), out = new Set<string>();
  for (const id of layers) {
    const hit = names.filter((n) => pagLayerMatches(id, n));
    if (hit.length === 0) {
      const blocks = [...new Set(names.map((n) => n.replace(/\.attentions\..*$/, "")))];
      throw new PagLayerError(`PAG layer ${JSON.stringify(id)} matches no self-attention layer of this UNet (it has them in ${blocks.join(", ") || "no block"})`);
    }
    for (const n of hit) out.add(n);
  }
  return out;
}

/** The UNet's self-attention variant for PAG. */
export function pagSelfAttention(c: UNetConfig, opts: PagGraphOptions): SelfAttentionVariant {
  const targets = pagTargets(c, opts.layers);
  return { identityRowsOf: (name) => (targets.has(name) ? opts.perturbedRows : undefined) };
}
