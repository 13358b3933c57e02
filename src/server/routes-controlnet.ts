/**
 * sd-webui-controlnet's API routes over --controlnet-dir:
 *
 *   GET  /controlnet/version      { version: 2 }
 *   GET  /controlnet/model_list   { model_list: [names] }   (A1111's "name [hash]" is accepted back; names here have no hash)
 *   GET  /controlnet/module_list  { module_list: ["none", "canny"], module_detail: { canny: { sliders } } }
 *   POST /controlnet/detect       { controlnet_module, controlnet_input_images: [base64], controlnet_processor_res,
 *                                   controlnet_threshold_a, controlnet_threshold_b (absent or -1: 512, 100, 200) } -> { images: [base64 PNG], info }
 *
 * Units themselves arrive in txt2img / img2img's alwayson_scripts.controlnet.args (controlnet-request.ts).
 */
import { encodePng } from "../image/png.js";
import { invalid } from "./errors.js";
import { readJson, sendJson, type Router } from "./http.js";
import type { AppState } from "./generation.js";
import { CANNY_DEFAULTS, CONTROLNET_MODULES, type ControlNetModule } from "./controlnet-spec.js";
import { controlMap } from "./controlnet-units.js";
import { Fields, checkImageCount, decodeBase64Image } from "./validation.js";

/** The UI sliders of each module, as sd-webui-controlnet's module_detail describes them. */
const MODULE_DETAIL = {
  none: { model_free: false, sliders: [] },
  canny: {
    model_free: false,
    sliders: [
      { name: "Preprocessor Resolution", value: CANNY_DEFAULTS.processorRes, min: 64, max: 2048 },
      { name: "Canny Low Threshold", value: CANNY_DEFAULTS.low, min: 1, max: 255 },
      { name: "Canny High Threshold", value: CANNY_DEFAULTS.high, min: 1, max: 255 },
    ],
  },
};

const DETECT_KEYS = ["controlnet_module", "controlnet_input_images", "controlnet_processor_res", "controlnet_threshold_a", "controlnet_threshold_b", "controlnet_masks", "low_vram"];

export function controlNetRoutes(router: Router<AppState>): void {
  router.on("GET", "/controlnet/version", (ctx) => sendJson(ctx.res, 200, { version: 2 }));

  router.on("GET", "/controlnet/model_list", async (ctx) => {
    sendJson(ctx.res, 200, { model_list: ctx.state.controlnets ? await ctx.state.controlnets.names() : [] });
  });

  router.on("GET", "/controlnet/module_list", (ctx) => {
    sendJson(ctx.res, 200, { module_list: [...CONTROLNET_MODULES], module_detail: MODULE_DETAIL });
  });

  router.on("POST", "/controlnet/detect", async (ctx) => {
    const { limits } = ctx.state;
    const f = Fields.of(await readJson(ctx.req, limits.maxBodyBytes));
    for (const k of Object.keys(f.body)) if (!DETECT_KEYS.includes(k)) throw invalid(`${k}: unknown field (known: ${DETECT_KEYS.join(", ")})`, "unsupported_feature", k);
    const raw = f.string("controlnet_module") ?? "none";
    const module = raw.toLowerCase() as ControlNetModule;
    if (!CONTROLNET_MODULES.includes(module)) throw invalid(`controlnet_module: unknown module ${JSON.stringify(raw)} (this server has ${CONTROLNET_MODULES.join(", ")})`, "unknown_module", "controlnet_module");
    const images = f.stringArray("controlnet_input_images");
    if (!images || images.length === 0) throw invalid("controlnet_input_images must hold at least one base64 image", "missing_field", "controlnet_input_images");
    checkImageCount(images.length, limits, "controlnet_input_images");
    const masks = f.raw("controlnet_masks");
    if (Array.isArray(masks) ? masks.some((m) => m) : masks) throw invalid("controlnet_masks are not supported", "unsupported_feature", "controlnet_masks");
    // as sd-webui-controlnet's current detect: absent or -1 is the module's own (512, 100, 200; its older releases defaulted to 512, 64, 64)
    const res = f.int("controlnet_processor_res", -1, limits.maxSide) ?? -1;
    const ta = f.number("controlnet_threshold_a", -1, 255) ?? -1, tb = f.number("controlnet_threshold_b", -1, 255) ?? -1;
    const unit = {
      module, processorRes: res, pixelPerfect: false, resizeMode: "Just Resize" as const,
      thresholdA: ta < 0 ? CANNY_DEFAULTS.low : ta, thresholdB: tb < 0 ? CANNY_DEFAULTS.high : tb,
    };
    const out = images.map((data, i) => {
      const { image } = decodeBase64Image(data, limits, `controlnet_input_images[${i}]`);
      return encodePng(controlMap(unit, image)).toString("base64");
    });
    sendJson(ctx.res, 200, { images: out, info: "Success" });
  });
}
