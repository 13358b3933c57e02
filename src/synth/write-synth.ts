import { writeSafetensors } from "../safetensors/write.js";
import { f32ToF16 } from "../safetensors/dtypes.js";
import { synthTensor } from "./synth-weights.js";
import { writeAtomically } from "../util/atomic-write.js";

export type SynthDtype = "fp32" | "fp16";

/** Writes synth weights for `params` (key -> shape), sorted by key as torch's save_file does (through a temporary name). */
export function writeSynthFile(file: string, params: Iterable<[string, readonly number[]]>, dtype: SynthDtype = "fp32"): void {
  const specs = [...params].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, shape]) => ({ name, shape: [...shape], dtype: dtype === "fp16" ? "F16" as const : "F32" as const }));
  let scratch = new Float32Array(0);
  writeAtomically(file, (tmp) => writeSafetensors(tmp, specs, (s) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (scratch.length < n) scratch = new Float32Array(n);
    const data = synthTensor(s.name, s.shape, scratch.subarray(0, n));
    return dtype === "fp16" ? f32ToF16(data) : data;
  }));
}
