import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { ExecutionDevice } from "./session.js";
import { WEBGPU_HELP } from "./session.js";
import { webgpuAttentionVerdict } from "./webgpu-check.js";

/**
 * `--device auto|cpu|webgpu`. onnxruntime-node 1.30 does not tell which adapter its WebGPU EP (Dawn on
 * Vulkan) picked, so what the adapter is comes from the Vulkan side: the driver manifests (ICDs) the
 * loader reads and the display devices on the PCI bus.
 */
export type DeviceChoice = ExecutionDevice | "auto";

export function parseDevice(value: string | undefined): DeviceChoice | undefined {
  return value === "cpu" || value === "webgpu" || value === "auto" ? value : undefined;
}

/** Software Vulkan drivers: correct, but far slower than onnxruntime's CPU EP. */
const SOFTWARE = /lvp|lavapipe|llvmpipe|swiftshader/i;
const VENDORS: Record<number, { name: string; driver: RegExp }> = {
  0x10de: { name: "NVIDIA", driver: /nvidia/i },
  0x1002: { name: "AMD", driver: /radeon|amdvlk|amdgpu/i },
  0x8086: { name: "Intel", driver: /intel/i },
  0x5143: { name: "Qualcomm", driver: /freedreno|adreno/i },
};

interface Icd { manifest: string; library: string }

/** The ICD manifests the Vulkan loader would read (VK_DRIVER_FILES / VK_ICD_FILENAMES, else the system folders). */
export function vulkanDrivers(env: NodeJS.ProcessEnv = process.env): Icd[] {
  const given = env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES;
  const entries = given ? given.split(":") : ["/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d", "/usr/share/vulkan/icd.d"];
  const files = entries.flatMap((p) => {
    try { return statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith(".json")).map((f) => join(p, f)) : [p]; } catch { return []; }
  });
  return files.flatMap((manifest) => {
    try { return [{ manifest, library: basename(String(JSON.parse(readFileSync(manifest, "utf8")).ICD?.library_path ?? "")) }]; } catch { return []; }
  });
}

export interface GpuAdapter { name: string; driver: string }

/** Hardware display devices that have a Vulkan driver among `drivers`. */
export function hardwareAdapters(drivers = vulkanDrivers(), pci = "/sys/bus/pci/devices"): GpuAdapter[] {
  const found: GpuAdapter[] = [];
  let devices: string[] = [];
  try { devices = readdirSync(pci); } catch { return found; }
  for (const d of devices) {
    const read = (f: string) => { try { return readFileSync(join(pci, d, f), "utf8").trim(); } catch { return ""; } };
    if (!read("class").startsWith("0x03")) continue; // display controllers
    const vendor = Number(read("vendor")), device = read("device").replace(/^0x/, "");
    const known = VENDORS[vendor];
    const driver = known && drivers.find((i) => known.driver.test(i.library) && !SOFTWARE.test(i.library));
    if (!known || !driver) continue;
    found.push({ name: `${nvidiaModel(d) ?? `${known.name} GPU`} [${vendor.toString(16).padStart(4, "0")}:${device}]`, driver: driver.library });
  }
  return found;
}

/** NVIDIA's driver names its GPUs in /proc (the PCI ids alone do not). */
function nvidiaModel(pciAddress: string): string | undefined {
  const info = `/proc/driver/nvidia/gpus/${pciAddress}/information`;
  if (!existsSync(info)) return undefined;
  return /^Model:\s*(.+)$/m.exec(readFileSync(info, "utf8"))?.[1]?.trim();
}

/**
 * The device to run on, with one log line naming the adapter. auto: webgpu when a hardware GPU with a
 * Vulkan driver exists and the WebGPU EP starts on it, else cpu (software adapters are never chosen).
 * webgpu: an error saying what to do when no adapter starts.
 */
export async function resolveDevice(choice: DeviceChoice, log: (m: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<ExecutionDevice> {
  if (choice === "cpu") return "cpu";
  const drivers = vulkanDrivers(env);
  const gpus = hardwareAdapters(drivers);
  const software = drivers.filter((d) => SOFTWARE.test(d.library)).map((d) => d.library);
  const what = gpus.length ? gpus.map((g) => `${g.name} via ${g.driver}`).join(", ") : software.length ? `a software adapter (${software.join(", ")})` : "no Vulkan driver found";
  if (choice === "auto" && gpus.length === 0) {
    log(`device: cpu (auto: no GPU with a Vulkan driver${software.length ? `; software adapters (${software.join(", ")}) are slower than the CPU EP` : ""})`);
    return "cpu";
  }
  try {
    const verdict = await webgpuAttentionVerdict();
    log(`device: webgpu (${choice === "auto" ? "auto: " : ""}${what}${verdict.unfused ? "; attention as MatMul + Softmax + MatMul" : ""})`);
    return "webgpu";
  } catch (e) {
    const why = (e as Error).message.split("\n")[0].replace(/^.*was false\.\s*/, ""); // drop onnxruntime's source location
    if (choice === "auto") { log(`device: cpu (auto: the WebGPU adapter did not start: ${why})`); return "cpu"; }
    throw new Error(`--device webgpu: no WebGPU adapter could start (${why}; Vulkan: ${what}); ${WEBGPU_HELP}`);
  }
}
