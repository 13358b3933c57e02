/**
 * AUTOMATIC1111's upscaling routes ("Extras"):
 *
 *   GET  /sdapi/v1/upscalers -> [{ name, model_name, model_path, model_url, scale }]
 *        None, Lanczos, Nearest, then the RRDBNet models of --upscaler-dir by file name
 *   POST /sdapi/v1/extra-single-image { image: base64 PNG/JPEG, upscaling_resize (default 2), upscaler_1 (default "None") }
 *        -> { html_info, image: base64 PNG }
 *   POST /sdapi/v1/extra-batch-images { imageList: [{ data: base64, name }], ...the same fields }
 *        -> { html_info, images: [base64 PNG] }   (at most MAX_BATCH_IMAGES images, one after another)
 *
 * Only resize_mode 0 (scale by) and one upscaler; fields for face restoration or a second upscaler
 * with a visibility above 0 are refused rather than ignored. The upscale runs in the request, one at
 * a time (not in the generation queue).
 */
import { encodePng, type RgbImage } from "../image/png.js";
import { invalid } from "./errors.js";
import { readJson, sendJson, type Router } from "./http.js";
import type { AppState } from "./generation.js";
import { decodeBase64Image, Fields } from "./validation.js";
import { UpscalerLibrary, UpscalerLibraryError } from "./upscaler-library.js";

const escapeHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const MODEL_FREE = new UpscalerLibrary();

export function extrasRoutes(router: Router<AppState>): void {
  router.on("GET", "/sdapi/v1/upscalers", async (ctx) => {
    const list = await (ctx.state.upscalers ?? MODEL_FREE).list();
    sendJson(ctx.res, 200, list.map((e) => ({ name: e.name, model_name: e.path ? e.name : null, model_path: e.path ?? null, model_url: null, scale: e.scale })));
  });

  router.on("POST", "/sdapi/v1/extra-single-image", async (ctx) => {
    const f = Fields.of(await readJson(ctx.req, ctx.state.limits.maxBodyBytes));
    const settings = readSettings(f);
    const { image } = decodeBase64Image(f.requiredString("image"), ctx.state.limits, "image");
    const { png, info } = await upscaleOne(ctx.state, settings, image, "extra-single-image");
    sendJson(ctx.res, 200, { html_info: htmlInfo(info), image: png.toString("base64") });
  });

  router.on("POST", "/sdapi/v1/extra-batch-images", async (ctx) => {
    const f = Fields.of(await readJson(ctx.req, ctx.state.limits.maxBodyBytes));
    const settings = readSettings(f);
    const list = f.raw("imageList");
    if (!Array.isArray(list) || list.length === 0) throw invalid("imageList must hold at least one { data: base64 image, name }", "missing_field", "imageList");
    if (list.length > MAX_BATCH_IMAGES) throw invalid(`imageList holds ${list.length} images; at most ${MAX_BATCH_IMAGES} per request`, "invalid_value", "imageList");
    // every image is decoded (and checked) before any upscale runs
    const images = list.map((entry, i) => {
      const data = (entry as { data?: unknown } | null)?.data;
      if (typeof data !== "string") throw invalid(`imageList[${i}].data must be a base64 image`, "invalid_image", `imageList[${i}].data`);
      return decodeBase64Image(data, ctx.state.limits, `imageList[${i}].data`).image;
    });
    const out: string[] = [];
    let info = "";
    for (const image of images) {
      const r = await upscaleOne(ctx.state, settings, image, "extra-batch-images");
      out.push(r.png.toString("base64"));
      info = r.info;
    }
    sendJson(ctx.res, 200, { html_info: htmlInfo(info), images: out });
  });
}

/** Images one batch request may upscale (each can be up to the size limit). */
export const MAX_BATCH_IMAGES = 16;

interface ExtrasSettings { scale: number; name: string }

/** The fields both routes share; face restoration, a second upscaler and resize-to-size are refused. */
function readSettings(f: Fields): ExtrasSettings {
  const mode = f.int("resize_mode", 0, 1) ?? 0;
  if (mode !== 0) throw invalid("resize_mode 1 (resize to a size) is not supported; give upscaling_resize", "invalid_value", "resize_mode");
  for (const field of ["gfpgan_visibility", "codeformer_visibility", "extras_upscaler_2_visibility"]) {
    if ((f.number(field, 0, 1) ?? 0) > 0) throw invalid(`${field} above 0 is not supported (no face restoration, one upscaler)`, "invalid_value", field);
  }
  return { scale: f.number("upscaling_resize", 0.01, 8) ?? 2, name: f.string("upscaler_1", 255) ?? "None" };
}

/** One upscale through the library (any size up to the limits: img2img's multiple-of-8 rule is not for upscaling), with A1111's extras infotext. */
async function upscaleOne(state: AppState, s: ExtrasSettings, image: RgbImage, route: string): Promise<{ png: Buffer; info: string }> {
  const library = state.upscalers ?? MODEL_FREE;
  let out;
  try {
    await library.get(s.name);
    const started = Date.now();
    out = await library.upscale(s.name, image, s.scale);
    state.log(`${route}: ${s.name} ${image.width}x${image.height} -> ${out.width}x${out.height} in ${Date.now() - started} ms`);
  } catch (e) {
    if (e instanceof UpscalerLibraryError) throw invalid(e.message, "invalid_value", "upscaler_1");
    throw e;
  }
  const info = s.name === "None" ? "" : `Postprocess upscale by: ${s.scale}, Postprocess upscaler: ${s.name}`;
  return { png: encodePng(out, info ? { parameters: info } : {}), info };
}

const htmlInfo = (info: string) => (info ? `<p>${escapeHtml(info)}</p>` : "");
