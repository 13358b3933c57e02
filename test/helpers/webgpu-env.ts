/**
 * Adapter configurations for the WebGPU tests: Mesa's lavapipe (a software Vulkan driver, >= Mesa 25 for
 * Dawn), bare or behind the Vulkan test layer in test/vulkan-layer, which steers onnxruntime onto the
 * kernel paths real GPUs take. Everything here is environment for child processes: the Vulkan loader
 * reads it once per process.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "./fixtures.js";

export interface AdapterConfig {
  name: string;
  /** What the attention self-check must decide on it (true: MatMul + Softmax + MatMul). */
  expectUnfused: boolean;
  env: NodeJS.ProcessEnv;
}

const CACHE = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"));
/** Mesa keeps compiled shaders here across runs (a cold cache costs minutes on two cores). */
export const MESA_SHADER_CACHE = process.env.MESA_SHADER_CACHE_DIR ?? join(CACHE, "ssd1b-mesa-shaders");
const LAYER_NAME = "VK_LAYER_TEST_nosubgroups";

/** lavapipe's ICD manifest: SSD1B_LAVAPIPE_ICD, else where Debian's mesa-vulkan-drivers puts it. */
export function lavapipeIcd(): string | undefined {
  const icd = process.env.SSD1B_LAVAPIPE_ICD ?? "/usr/share/vulkan/icd.d/lvp_icd.json";
  return existsSync(icd) ? icd : undefined;
}

/** Builds the test layer (gcc + Vulkan headers) into the cache once; its folder, or why not. */
export function buildTestLayer(): { dir: string } | { error: string } {
  const src = join(PROJECT_ROOT, "test", "vulkan-layer", "nosg.c");
  const dir = join(CACHE, "ssd1b-vk-test-layer");
  const lib = join(dir, "libnosg.so");
  try {
    if (!existsSync(lib) || statSync(lib).mtimeMs < statSync(src).mtimeMs) {
      mkdirSync(dir, { recursive: true });
      execFileSync("gcc", ["-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-o", lib, src], { stdio: "pipe" });
    }
    writeFileSync(join(dir, "nosg.json"), JSON.stringify({
      file_format_version: "1.0.0",
      layer: { name: LAYER_NAME, type: "GLOBAL", library_path: lib, api_version: "1.3.0", implementation_version: "1", description: "test: hide subgroups / report a vendor id" },
    }));
    return { dir };
  } catch (e) {
    return { error: `the Vulkan test layer did not build (needs gcc and libvulkan-dev): ${(e as Error).message.split("\n")[0]}` };
  }
}

/** Base environment of every configuration: lavapipe only, quiet loader, fixed shader cache. */
function baseEnv(icd: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, VK_DRIVER_FILES: icd, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? "/tmp", MESA_SHADER_CACHE_DIR: MESA_SHADER_CACHE };
  for (const k of ["VK_ICD_FILENAMES", "VK_ADD_LAYER_PATH", "VK_INSTANCE_LAYERS", "NOSG_SUBGROUPS", "NOSG_VENDOR"]) delete env[k];
  return env;
}

/**
 * bare: lavapipe as it is (subgroup size 4/8/16 → onnxruntime's subgroup attention kernel, which is wrong);
 * nvidia-like: subgroups kept, NVIDIA's vendor id (flash attention's shared-memory kernel);
 * no-subgroups: subgroups hidden (the shared-memory kernel too, as on adapters without subgroups).
 */
export function adapterConfigs(icd: string, layer: { dir: string } | { error: string }): { configs: AdapterConfig[]; skipped: string[] } {
  const configs: AdapterConfig[] = [{ name: "bare", expectUnfused: true, env: baseEnv(icd) }];
  const skipped: string[] = [];
  if ("dir" in layer) {
    const withLayer = { ...baseEnv(icd), VK_ADD_LAYER_PATH: layer.dir, VK_INSTANCE_LAYERS: LAYER_NAME };
    configs.push({ name: "nvidia-like", expectUnfused: false, env: { ...withLayer, NOSG_SUBGROUPS: "1", NOSG_VENDOR: "0x10de" } });
    configs.push({ name: "no-subgroups", expectUnfused: false, env: withLayer });
  } else {
    skipped.push(layer.error);
  }
  return { configs, skipped };
}
