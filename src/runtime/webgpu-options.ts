/**
 * onnxruntime's WebGPU provider options that may matter for speed on a real GPU, as developer
 * overrides until a GPU session has measured them (bench/device-run.sh runs the UNet with each):
 *   SSD1B_WEBGPU_LAYOUT=NHWC|NCHW        preferredLayout of Conv and the other layout-sensitive ops (default NCHW)
 *   SSD1B_WEBGPU_VALIDATION=disabled|wgpuOnly|basic|full   validationMode (default basic)
 *   SSD1B_WEBGPU_BUFFER_CACHE=disabled|lazyRelease|simple|bucket  storageBufferCacheMode (default bucket)
 * Unset: onnxruntime's defaults. A bad value is an error naming the variable, not a silent default.
 */
import type * as ort from "onnxruntime-node";

type WebGpuOption = ort.InferenceSession.WebGpuExecutionProviderOption;

const KNOBS = {
  SSD1B_WEBGPU_LAYOUT: { option: "preferredLayout", values: ["NCHW", "NHWC"] },
  SSD1B_WEBGPU_VALIDATION: { option: "validationMode", values: ["disabled", "wgpuOnly", "basic", "full"] },
  SSD1B_WEBGPU_BUFFER_CACHE: { option: "storageBufferCacheMode", values: ["disabled", "lazyRelease", "simple", "bucket"] },
} as const;

/** The WebGPU execution provider entry for a session: onnxruntime's defaults unless the environment overrides them. */
export function webgpuProvider(env: NodeJS.ProcessEnv = process.env): WebGpuOption {
  const entry: Record<string, string> = { name: "webgpu" };
  for (const [variable, { option, values }] of Object.entries(KNOBS)) {
    const value = env[variable];
    if (value === undefined || value === "") continue;
    if (!(values as readonly string[]).includes(value)) throw new Error(`${variable}=${value}: must be one of ${values.join(", ")}`);
    entry[option] = value;
  }
  return entry as unknown as WebGpuOption;
}

/** The overrides in effect, for a benchmark's table ("" when none). */
export function webgpuOverrides(env: NodeJS.ProcessEnv = process.env): string {
  const { name: _name, ...rest } = webgpuProvider(env) as unknown as Record<string, string>;
  return Object.entries(rest).map(([k, v]) => `${k} ${v}`).join(", ");
}
