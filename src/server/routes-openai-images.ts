/**
 * The OpenAI Images API's uploads, as the `openai` SDK's images.edit / images.createVariation send
 * them (multipart/form-data), and its model list:
 *
 *   POST /v1/images/edits       image (PNG / JPEG file), mask (optional PNG: its fully transparent pixels,
 *                               alpha 0, mark the area to repaint; without a mask the image's own fully
 *                               transparent pixels do, as OpenAI does), prompt, n, size, response_format
 *     -> inpainting (diffusers' algorithm, no mask blur, strength 1 unless `strength` is given)
 *   POST /v1/images/variations  image, n, size, response_format
 *     -> img2img of the image with an empty prompt at strength 0.75 (OpenAI makes variations from the
 *        image alone; an empty prompt is the closest an SDXL img2img gets, 0.75 keeps its layout)
 *   GET  /v1/models, /v1/models/{id}: the loaded model as OpenAI lists models
 *
 * Extensions (form fields): negative_prompt, seed, steps, guidance_scale, scheduler, strength.
 * `model`, `user`, `quality`, `background`, `moderation`, `input_fidelity` are accepted and ignored.
 * `size` other than the image's own (or "auto") crops and resizes the image and the mask to it (A1111's
 * resize_mode 1, PIL-exact Lanczos: the aspect ratio is kept, the overflow cut).
 */
import { invalid, notFound } from "./errors.js";
import { baseUrl, sendJson, type Ctx, type Router } from "./http.js";
import { generateForRequest, type AppState } from "./generation.js";
import { DEFAULTS, checkScheduler, checkSide, checkStrength, finishSpec, parseSize, readSeed, type Fields, type Limits } from "./validation.js";
import type { JobOutput, JobSpec, Job } from "./job.js";
import { readForm, type FormSchema } from "./form-request.js";
import { readLoras } from "./lora-request.js";
import { readOpenAiModel } from "./model-request.js";
import { servedModels } from "./queue.js";
import { encodePng, type RgbImage } from "../image/png.js";
import { decodeUpload, type RgbaImage } from "./upload-image.js";
import { checkMask } from "./inpaint-request.js";
import { a1111Resize } from "../image/resize-modes.js";

/** Variations: img2img strength (see the header). */
export const VARIATION_STRENGTH = 0.75;

const IGNORED = ["model", "user", "quality", "background", "moderation", "input_fidelity"];
const COMMON: Omit<FormSchema, "files"> = {
  numbers: ["n", "seed", "steps", "guidance_scale", "strength", "partial_images", "output_compression"],
  booleans: ["stream"],
  strings: ["prompt", "negative_prompt", "size", "response_format", "output_format", "scheduler", ...IGNORED],
};

/** The image's RGB, and its alpha as a mask: alpha 0 (fully transparent) = 255 (repaint). */
function split(img: RgbaImage): { rgb: RgbImage; transparent: RgbImage } {
  const n = img.width * img.height;
  const rgb = new Uint8Array(3 * n), mask = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    rgb[3 * i] = img.data[4 * i]; rgb[3 * i + 1] = img.data[4 * i + 1]; rgb[3 * i + 2] = img.data[4 * i + 2];
    mask.fill(img.data[4 * i + 3] === 0 ? 255 : 0, 3 * i, 3 * i + 3);
  }
  return { rgb: { width: img.width, height: img.height, data: rgb }, transparent: { width: img.width, height: img.height, data: mask } };
}

/** The output size (`size`, default the image's) and a function fitting an image to it. */
function outputSize(f: Fields, limits: Limits, image: RgbImage): (img: RgbImage) => RgbImage {
  const size = parseSize(f, limits);
  const w = size.width ?? image.width, h = size.height ?? image.height;
  return (img) => (img.width === w && img.height === h ? img : a1111Resize(img, w, h, 1) as RgbImage);
}

function readImage(files: Map<string, Buffer>, limits: Limits, name: string): RgbaImage {
  const bytes = files.get(name);
  if (!bytes) throw invalid(`${name} is required: the image file (PNG or JPEG)`, "missing_field", name);
  return decodeUpload(bytes, limits, name);
}

/** The fitted image's sides: multiples of 8 within the limit. */
function checkSides(img: RgbImage, limits: Limits, param: string): RgbImage {
  checkSide(`the ${param} width`, img.width, limits, param);
  checkSide(`the ${param} height`, img.height, limits, param);
  return img;
}

/** The fields both uploads share (the JSON generations route's, read from the form). */
function baseSpec(f: Fields, limits: Limits, image: RgbImage, prompt: string): JobSpec {
  for (const name of IGNORED) f.string(name);
  const format = f.string("output_format");
  if (format !== undefined && format !== "png") throw invalid(`output_format ${JSON.stringify(format)} is not supported; only "png"`, "invalid_value", "output_format");
  if (f.bool("stream")) throw invalid("stream is not supported; follow GET /v1/jobs/{id}/events for progress", "invalid_value", "stream");
  return {
    prompt,
    negativePrompt: f.string("negative_prompt", limits.maxPromptChars),
    steps: f.int("steps", 1, limits.maxSteps) ?? DEFAULTS.steps,
    guidanceScale: f.number("guidance_scale", 0, 100) ?? DEFAULTS.guidanceScale,
    seed: readSeed(f),
    scheduler: checkScheduler(f.string("scheduler"), "scheduler"),
    batchSize: f.int("n", 1, 1_000_000) ?? 1,
    iterations: 1,
    initImage: encodePng(image).toString("base64"),
  };
}

/** OpenAI's images answer ({ created, data: [{ b64_json } | { url }] }), each item with its seed. */
export async function answerImages(ctx: Ctx<AppState>, spec: JobSpec, responseFormat: "b64_json" | "url"): Promise<void> {
  const { job, output }: { job: Job; output: JobOutput } = await generateForRequest(ctx, spec);
  const base = baseUrl(ctx.req);
  sendJson(ctx.res, 200, {
    created: Math.floor(Date.now() / 1000),
    data: output.images.map((png, i) => responseFormat === "url"
      ? { url: `${base}/files/${job.files[i]}`, seed: output.seeds[i] }
      : { b64_json: png.toString("base64"), seed: output.seeds[i] }),
    size: `${output.width}x${output.height}`,
    output_format: "png",
  });
}

export function openAiImageRoutes(router: Router<AppState>): void {
  router.on("POST", "/v1/images/edits", async (ctx) => {
    const { limits } = ctx.state;
    const { files, fields: f } = await readForm(ctx.req, limits.maxBodyBytes, { files: ["image", "mask"], ...COMMON });
    const responseFormat = f.oneOf("response_format", ["b64_json", "url"] as const) ?? "b64_json";
    const prompt = f.requiredString("prompt", limits.maxPromptChars);
    const image = split(readImage(files, limits, "image"));
    // the mask's fully transparent pixels, else the image's own
    const maskBytes = files.get("mask");
    const mask = maskBytes ? split(decodeUpload(maskBytes, limits, "mask")).transparent : image.transparent;
    const where = maskBytes ? "mask" : "image";
    if (maskBytes && (mask.width !== image.rgb.width || mask.height !== image.rgb.height)) {
      throw invalid(`the mask is ${mask.width}x${mask.height} but the image is ${image.rgb.width}x${image.rgb.height}; they must be the same size`, "invalid_image", "mask");
    }
    if (!mask.data.includes(255)) {
      throw invalid(`the ${where} has no fully transparent pixels (alpha 0): nothing to edit; ${maskBytes ? "make the area to edit transparent in the mask" : "send a mask, or make the area to edit transparent"}`, "invalid_image", where);
    }
    const fit = outputSize(f, limits, image.rgb);
    const rgb = checkSides(fit(image.rgb), limits, "image");
    const spec = baseSpec(f, limits, rgb, prompt);
    readOpenAiModel(f, spec, ctx.state.queue.model());
    spec.strength = f.number("strength", 0, 1) ?? 1;
    checkStrength(spec.strength, spec.steps, "strength");
    // diffusers' inpainting as it stands: no blur, the masked area starts from the image, the whole picture
    spec.inpaint = {
      mask: checkMask(fit(mask), rgb, false, where), invertMask: false, maskBlurX: 0, maskBlurY: 0,
      inpaintingFill: 1, inpaintFullRes: false, inpaintFullResPadding: 0,
    };
    await readLoras(f, finishSpec(spec, limits), ctx.state);
    await answerImages(ctx, spec, responseFormat);
  }, { multipart: true });

  router.on("POST", "/v1/images/variations", async (ctx) => {
    const { limits } = ctx.state;
    const { files, fields: f } = await readForm(ctx.req, limits.maxBodyBytes, { files: ["image"], ...COMMON });
    const responseFormat = f.oneOf("response_format", ["b64_json", "url"] as const) ?? "b64_json";
    if (f.string("prompt")) throw invalid("variations take no prompt (use /v1/images/edits)", "invalid_value", "prompt");
    const image = split(readImage(files, limits, "image"));
    const spec = baseSpec(f, limits, checkSides(outputSize(f, limits, image.rgb)(image.rgb), limits, "image"), "");
    readOpenAiModel(f, spec, ctx.state.queue.model());
    spec.strength = f.number("strength", 0, 1) ?? VARIATION_STRENGTH;
    checkStrength(spec.strength, spec.steps, "strength");
    await answerImages(ctx, finishSpec(spec, limits), responseFormat);
  }, { multipart: true });

  const listed = (ctx: Ctx<AppState>) => servedModels(ctx.state.queue.model())
    .map((m) => ({ id: m.name, object: "model", created: Math.floor(ctx.state.startedAt / 1000), owned_by: "ssd1b" }));
  router.on("GET", "/v1/models", (ctx) => sendJson(ctx.res, 200, { object: "list", data: listed(ctx) }));
  router.on("GET", "/v1/models/:id", (ctx) => {
    const all = listed(ctx);
    const m = all.find((x) => x.id === ctx.params.id);
    if (!m) throw notFound(`the model ${JSON.stringify(ctx.params.id)} does not exist; this server serves ${all.map((x) => JSON.stringify(x.id)).join(", ")}`);
    sendJson(ctx.res, 200, m);
  });
}
