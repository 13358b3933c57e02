/**
 * The server's --vae-dir: GET /sdapi/v1/sd-vae lists its VAE files, A1111's sd_vae (override_settings
 * or POST /sdapi/v1/options) and ComfyUI's VAELoader pick one for a job, and the job's images are the
 * library's with that VAE (pipe.withVae), to the level; unknown names and mixed VAEs are 400s naming them.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { NO_FIXTURES, PROJECT_ROOT, levelDiff } from "./helpers/fixtures.js";
import { serveTinyModel } from "./helpers/served-model.js";
import { postJson, txt2imgFirst } from "./helpers/a1111-client.js";
import { comfyRefused, runComfyPrompt } from "./helpers/comfy-client.js";
import { tinyVaeFile } from "./helpers/tiny-vae-file.js";
import { VaeLibrary } from "../src/server/vae-library.js";
import { saveTensors } from "../src/safetensors/index.js";
import { decodePng } from "../src/image/png.js";
import { toRgb8 } from "../src/image/image.js";
import type { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";

const served = serveTinyModel("server-vae-", {
  skip: NO_FIXTURES,
  setup: (tmp) => {
    const dir = join(tmp, "vae");
    mkdirSync(join(dir, "sub"), { recursive: true });
    tinyVaeFile(tmp, join(dir, "sdxl_vae.safetensors"));
    tinyVaeFile(tmp, join(dir, "sub", "warm.safetensors"), { shift: 0.2 });
    saveTensors(join(dir, "not-a-vae.safetensors"), { "lora_unet_x.lora_down.weight": { dtype: "F32", shape: [1], data: new Float32Array(1) } });
    return { server: { vaes: new VaeLibrary(dir) } };
  },
});
let warm: StableDiffusionXLPipeline | undefined;
after(async () => { await warm?.release(); });

const request = { prompt: "a lighthouse", negative_prompt: "fog", steps: 3, width: 32, height: 32, sampler_name: "Euler", cfg_scale: 5, seed: 4 };
const call = { prompt: "a lighthouse", negativePrompt: "fog", numInferenceSteps: 3, guidanceScale: 5, width: 32, height: 32, seeds: [4], scheduler: "Euler" };

test("A1111: sd-vae lists --vae-dir's VAE files; sd_vae picks one per request or for the requests after", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const url = served.server.url;
  const list = await (await fetch(`${url}/sdapi/v1/sd-vae`)).json() as { model_name: string; filename: string }[];
  assert.deepEqual(list.map((v) => v.model_name), ["sdxl_vae.safetensors", "warm.safetensors"], "not-a-vae is left out");
  assert.ok(list[1].filename.endsWith(join("sub", "warm.safetensors")));

  warm ??= await served.pipe.withVae(list[1].filename);
  const want = await warm.generate(call);
  const own = await served.pipe.generate(call);
  const got = await txt2imgFirst(url, { ...request, override_settings: { sd_vae: "warm.safetensors" } });
  assert.ok(levelDiff(got.image, want.images.data) <= 1, `${levelDiff(got.image, want.images.data)} levels from the library`);
  assert.ok(levelDiff(got.image, own.images.data) > 5, "another VAE, another image");
  assert.equal(got.info.sd_vae_name, "warm.safetensors");
  assert.match(got.info.infotexts[0], /VAE: warm.safetensors/);
  // the same weights as the model's VAE, named without the extension: the model's image
  const same = await txt2imgFirst(url, { ...request, override_settings: { sd_vae: "sdxl_vae" } });
  assert.ok(levelDiff(same.image, own.images.data) <= 1);
  const automatic = await txt2imgFirst(url, { ...request, override_settings: { sd_vae: "Automatic" } });
  assert.ok(levelDiff(automatic.image, own.images.data) <= 1);
  assert.equal(automatic.info.sd_vae_name, null);

  // POST options: the requests after decode with it, until set back
  assert.equal((await postJson(url, "/sdapi/v1/options", { sd_vae: "warm.safetensors" })).status, 200);
  assert.equal((await (await fetch(`${url}/sdapi/v1/options`)).json() as any).sd_vae, "warm.safetensors");
  assert.ok(levelDiff((await txt2imgFirst(url, request)).image, want.images.data) <= 1);
  assert.equal((await postJson(url, "/sdapi/v1/options", { sd_vae: "Automatic" })).status, 200);
  assert.ok(levelDiff((await txt2imgFirst(url, request)).image, own.images.data) <= 1);

  for (const [path, body, param] of [
    ["/sdapi/v1/txt2img", { ...request, override_settings: { sd_vae: "sdxl-vae-fp16-fix.safetensors" } }, "override_settings.sd_vae"],
    ["/sdapi/v1/options", { sd_vae: "not-a-vae.safetensors" }, "sd_vae"],
  ] as const) {
    const r = await postJson(url, path, body);
    const out = await r.json() as any;
    assert.equal(r.status, 400, JSON.stringify(out));
    assert.equal(out.error.param, param);
    assert.match(out.error.message, /unknown VAE .* \(available: sdxl_vae.safetensors, warm.safetensors\); or "Automatic" or "None"/);
  }
});

/** ComfyUI's default graph at the request's settings, decoding with a VAELoader. */
function vaeGraph(vaeName: string): Record<string, any> {
  return {
    3: { class_type: "KSampler", inputs: { seed: 4, steps: 3, cfg: 5, sampler_name: "euler", scheduler: "ddim_uniform", denoise: 1, model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0] } },
    4: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny-ssd" } },
    5: { class_type: "EmptyLatentImage", inputs: { width: 32, height: 32, batch_size: 1 } },
    6: { class_type: "CLIPTextEncode", inputs: { text: "a lighthouse", clip: ["4", 1] } },
    7: { class_type: "CLIPTextEncode", inputs: { text: "fog", clip: ["4", 1] } },
    8: { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["10", 0] } },
    9: { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } },
    10: { class_type: "VAELoader", inputs: { vae_name: vaeName } },
  };
}

test("ComfyUI: VAELoader decodes with a --vae-dir file, listed in object_info; an unknown name or two VAEs are refused", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const url = served.server.url;
  const info = await (await fetch(`${url}/object_info/VAELoader`)).json() as any;
  assert.deepEqual(info.VAELoader.input.required.vae_name[0], ["sdxl_vae.safetensors", "warm.safetensors"]);
  const png = decodePng(await runComfyPrompt(url, vaeGraph("sub/warm.safetensors")));
  warm ??= await served.pipe.withVae(join(served.tmp, "vae", "sub", "warm.safetensors"));
  const want = await warm.generate({ ...call, seeds: undefined, seed: 4 });
  assert.deepEqual(png.data, toRgb8(want.images, 0).data);

  const refused = (prompt: unknown, node: string, input: string, message: RegExp) => comfyRefused(url, prompt, node, input, message);
  await refused(vaeGraph("ae.safetensors"), "10", "vae_name", /unknown VAE "ae.safetensors"/);
  // a checkpoint's VAE and a VAELoader's in one graph: two VAEs
  const mixed = vaeGraph("warm.safetensors");
  mixed[11] = { class_type: "PreviewImage", inputs: { images: ["12", 0] } };
  mixed[12] = { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } };
  await refused(mixed, "10", "vae_name", /encoded and decoded with one VAE here/);
});

test("ssd1b serve --vae-dir: a missing folder is a usage error naming the flag", () => {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "dist/src/cli/main.js"), "serve", "--queue", "redis://127.0.0.1:1", "--vae-dir", join(served.tmp, "nowhere")], { encoding: "utf8", timeout: 30000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--vae-dir .*nowhere: no such folder/);
});
