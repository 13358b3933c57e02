import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT } from "./helpers/fixtures.js";
import { hardwareAdapters, parseDevice, resolveDevice, vulkanDrivers } from "../src/runtime/device.js";

/** A fake /sys/bus/pci/devices with one display device, and an ICD folder. */
function fakeSystem(vendor: string, device: string, libraries: string[]) {
  const root = mkdtempSync(join(tmpdir(), "device-"));
  const dev = join(root, "pci", "0000:01:00.0");
  mkdirSync(dev, { recursive: true });
  writeFileSync(join(dev, "class"), "0x030000\n");
  writeFileSync(join(dev, "vendor"), `${vendor}\n`);
  writeFileSync(join(dev, "device"), `${device}\n`);
  mkdirSync(join(root, "icd"));
  libraries.forEach((l, i) => writeFileSync(join(root, "icd", `${i}.json`), JSON.stringify({ file_format_version: "1.0.0", ICD: { library_path: `/usr/lib/${l}`, api_version: "1.3.0" } })));
  return { root, pci: join(root, "pci"), env: { VK_DRIVER_FILES: join(root, "icd") } };
}

test("device: --device values", () => {
  assert.deepEqual(["cpu", "webgpu", "auto", "cuda", undefined].map(parseDevice), ["cpu", "webgpu", "auto", undefined, undefined]);
});

test("device: a GPU counts only with its own (non-software) Vulkan driver", () => {
  const amd = fakeSystem("0x1002", "0x73bf", ["libvulkan_radeon.so", "libvulkan_lvp.so"]);
  const noDriver = fakeSystem("0x10de", "0x2335", ["libvulkan_radeon.so", "libvulkan_lvp.so"]);
  try {
    assert.deepEqual(hardwareAdapters(vulkanDrivers(amd.env), amd.pci), [{ name: "AMD GPU [1002:73bf]", driver: "libvulkan_radeon.so" }]);
    assert.deepEqual(hardwareAdapters(vulkanDrivers(noDriver.env), noDriver.pci), []);
  } finally {
    rmSync(amd.root, { recursive: true, force: true });
    rmSync(noDriver.root, { recursive: true, force: true });
  }
});

test("device: auto is cpu with only software adapters, and says why", async () => {
  const sw = fakeSystem("0x1234", "0x0001", ["libvulkan_lvp.so"]);
  try {
    const lines: string[] = [];
    assert.equal(await resolveDevice("auto", (m) => lines.push(m), sw.env), "cpu");
    assert.match(lines.join("\n"), /^device: cpu \(auto: no GPU with a Vulkan driver; software adapters \(libvulkan_lvp\.so\)/);
  } finally {
    rmSync(sw.root, { recursive: true, force: true });
  }
});

test("device: --device webgpu without any adapter is a clear error before the model loads", () => {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "dist/src/cli/main.js"), "generate", "--model", "/nonexistent", "--device", "webgpu", "--prompt", "x"], {
    encoding: "utf8", env: { ...process.env, VK_DRIVER_FILES: "/nonexistent/icd.json", XDG_RUNTIME_DIR: "/tmp" },
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--device webgpu: no WebGPU adapter could start \(Failed to get a WebGPU adapter[^)]*; Vulkan: no Vulkan driver found\); use --device cpu/);
});
