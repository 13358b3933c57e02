import * as F from "../../ir/functional.js";
import type { Tensor } from "../../ir/tensor.js";
import { Linear } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";

/**
 * Sinusoidal embedding of a [N] float tensor into [N, dim] (diffusers `get_timestep_embedding`,
 * max period 10000). The frequency table is computed in float32 steps as torch does.
 */
export function timestepEmbedding(t: Tensor, dim: number, flipSinToCos: boolean, freqShift: number): Tensor {
  const half = Math.floor(dim / 2);
  const freqs = new Float32Array(half);
  const logMax = Math.fround(-Math.log(10000));
  for (let i = 0; i < half; i++) freqs[i] = Math.fround(Math.exp(Math.fround(Math.fround(logMax * i) / (half - freqShift))));
  const n = t.shape[0];
  const args = F.mul(F.reshape(t, [n, 1]), t.graph.constant(freqs, [1, half]));
  const sin = F.sin(args);
  const cos = F.cos(args);
  return F.concat(flipSinToCos ? [cos, sin] : [sin, cos], 1);
}

/** linear_1 -> SiLU -> linear_2, with the optional `cond_proj` of LCM UNets. */
export class TimestepEmbedding {
  private readonly linear1: Linear;
  private readonly linear2: Linear;
  private readonly condProj?: Linear;
  constructor(vb: WeightBuilder, inChannels: number, timeEmbedDim: number, condProjDim: number | null = null) {
    this.linear1 = new Linear(vb.pp("linear_1"), inChannels, timeEmbedDim);
    this.linear2 = new Linear(vb.pp("linear_2"), timeEmbedDim, timeEmbedDim);
    if (condProjDim) this.condProj = new Linear(vb.pp("cond_proj"), condProjDim, inChannels, false);
  }
  forward(sample: Tensor, condition?: Tensor): Tensor {
    if (this.condProj && condition) sample = F.add(sample, this.condProj.forward(condition));
    return this.linear2.forward(F.silu(this.linear1.forward(sample)));
  }
}
