/**
 * AUTOMATIC1111's upscaling routes ("Extras"):
 *
 *   GET  /sdapi/v1/upscalers -> [{ name, model_name, model_path, model_url, scale }]
 *        None, Lanczos, Nearest, then the RRDBNet models of --upscaler-dir by file name
 *   POST /sdapi/v1/extra-single-image { image: base64 PNG/JPEG, upscaling_resize (default 2), upscaler_1 (default "None") }
 *        -> { html_info, image: base64 PNG }
 *
 * Only resize_mode 0 (scale by) and one upscaler; fields for face restoration or a second upscaler
 * with a visibility above 0 are refused rather than ignored. The upscale runs in the request, one at
 * a time (not in the generation queue).
 */
import { encodePng } from "../image/png.js";
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
    const { limits } = ctx.state;
    const f = Fields.of(await readJson(ctx.req, limits.maxBodyBytes));
    const mode = f.int("resize_mode", 0, 1) ?? 0;
    if (mode !== 0) throw invalid("resize_mode 1 (resize to a size) is not supported; give upscaling_resize", "invalid_value", "resize_mode");
    for (const field of ["gfpgan_visibility", "codeformer_visibility", "extras_upscaler_2_visibility"]) {
      if ((f.number(field, 0, 1) ?? 0) > 0) throw invalid(`${field} above 0 is not supported (no face restoration, one upscaler)`, "invalid_value", field);
    }
    const data = f.requiredString("image");
    const scale = f.number("upscaling_resize", 0.01, 8) ?? 2;
    const name = f.string("upscaler_1", 255) ?? "None";
    // any size up to maxSide² pixels: img2img's multiple-of-8 rule is not for upscaling
    const { image } = decodeBase64Image(data, limits, "image");
    const library = ctx.state.upscalers ?? MODEL_FREE;
    let out;
    try {
      await library.get(name);
      const started = Date.now();
      out = await library.upscale(name, image, scale);
      ctx.state.log(`extra-single-image: ${name} ${image.width}x${image.height} -> ${out.width}x${out.height} in ${Date.now() - started} ms`);
    } catch (e) {
      if (e instanceof UpscalerLibraryError) throw invalid(e.message, "invalid_value", "upscaler_1");
      throw e;
    }
    // the infotext A1111's extras write
    const info = name === "None" ? "" : `Postprocess upscale by: ${scale}, Postprocess upscaler: ${name}`;
    const png = encodePng(out, info ? { parameters: info } : {});
    sendJson(ctx.res, 200, { html_info: info ? `<p>${escapeHtml(info)}</p>` : "", image: png.toString("base64") });
  });
}
