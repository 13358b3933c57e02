/**
 * Host-side arithmetic on ControlNet residuals. The ControlNet session returns them unscaled, so one
 * compiled graph serves every conditioning scale, the control_guidance_start/end window (scale·keep)
 * and guess mode's per-residual scales; these multiplies are cheap next to the network.
 */
import type { UNetResidualFeeds } from "./sessions.js";

export type ControlNetResiduals = UNetResidualFeeds;

const f = Math.fround;

/**
 * guess mode's scales, torch.logspace(-1, 0, n + 1) · scale: down residual k gets 10^(-1 + k/n) · scale,
 * the mid residual (the last entry) 1 · scale. torch's CPU logspace takes the power in double and
 * rounds it to float32; the product with the scale is a float32 multiply.
 */
export function guessModeScales(downCount: number, scale: number): number[] {
  const steps = downCount + 1;
  return Array.from({ length: steps }, (_, i) => f(f(10 ** (-1 + i / (steps - 1))) * f(scale)));
}

/** Every residual times `scale` (one number, or one per down residual plus one for mid). */
export function scaleResiduals(r: ControlNetResiduals, scale: number | number[]): ControlNetResiduals {
  const scales = typeof scale === "number" ? Array(r.down.length + 1).fill(scale) : scale;
  if (scales.length !== r.down.length + 1) throw new Error(`ControlNet: ${scales.length} scales for ${r.down.length} down residuals + mid`);
  const mul = (a: Float32Array, s: number) => { const k = f(s); return a.map((v) => f(v * k)); };
  return { down: r.down.map((d, i) => mul(d, scales[i])), mid: mul(r.mid, scales[scales.length - 1]) };
}

/** Multi-ControlNet: the nets' (scaled) residuals are summed, in order. */
export function sumResiduals(list: ControlNetResiduals[]): ControlNetResiduals {
  if (list.length === 0) throw new Error("ControlNet: no residuals to sum");
  // one net (the usual case): nothing to add, and no copy of ~100 MB of residuals per step at 1024²
  if (list.length === 1) return list[0];
  const add = (parts: Float32Array[]) => {
    const out = parts[0].slice();
    for (const p of parts.slice(1)) for (let i = 0; i < out.length; i++) out[i] = f(out[i] + p[i]);
    return out;
  };
  return { down: list[0].down.map((_, k) => add(list.map((r) => r.down[k]))), mid: add(list.map((r) => r.mid)) };
}

/**
 * Guess mode with CFG: the ControlNet ran on the conditional half only; the UNet batch [neg, pos]
 * gets zeros for the negative half (diffusers' torch.cat([zeros_like(d), d])).
 */
export function withZeroUnconditionalHalf(r: ControlNetResiduals): ControlNetResiduals {
  const pad = (a: Float32Array) => { const out = new Float32Array(2 * a.length); out.set(a, a.length); return out; };
  return { down: r.down.map(pad), mid: pad(r.mid) };
}
