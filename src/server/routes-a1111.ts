/**
 * The AUTOMATIC1111 web UI API (`/sdapi/v1/...`) with its field names and answer shapes:
 *
 *   POST txt2img  { prompt, negative_prompt, seed, sampler_name, scheduler, batch_size, n_iter, steps, cfg_scale, width, height }
 *   POST img2img  { ...same, init_images: [base64 PNG / JPEG], denoising_strength (default 0.75, as A1111), width, height, resize_mode }
 *     (the init image is fitted to width x height by resize_mode; without them the output has its size)
 *     with mask (base64 PNG / JPEG, white = repaint): inpainting with mask_blur (or mask_blur_x / _y), inpainting_fill,
 *     inpaint_full_res, inpaint_full_res_padding, inpainting_mask_invert (A1111's API defaults; inpaint-request.ts)
 *   txt2img with enable_hr: the hires fix (hr_scale / hr_resize_x,y, hr_upscaler, hr_second_pass_steps, ...; hires-request.ts)
 *     -> { images: [base64 PNG], parameters: {the request with defaults}, info: "<JSON: seed, all_seeds, infotexts, ...>" }
 *   GET  progress?skip_current_image=false -> { progress, eta_relative, state: {job_count, sampling_step, sampling_steps, ...}, current_image }
 *   POST interrupt: the running request answers 200 with what it made (the current batch decoded where it stopped)
 *   POST skip: the current batch stops where it is (decoded, kept, as A1111 does) and the next iteration runs
 *   GET  loras -> [{ name, alias, path, metadata }] (the --lora-dir files), POST refresh-loras
 *   styles: ["NAME", ...] applies --styles-file styles to the prompts (styles-request.ts); GET prompt-styles lists them
 *   The lists, options and png-info: routes-a1111-lists.ts; override_settings and refused fields: a1111-settings.ts.
 *
 * `<lora:NAME:WEIGHT>` tags in prompt / negative_prompt apply LoRAs from --lora-dir as in A1111 (the
 * tags stay in the returned prompt and the PNG text); a `loras: [{name, weight}]` field does the same.
 *
 * With --fast, `preset: "fast"` runs the LCM-LoRA with sampler LCM, 4 steps, cfg_scale 1 and TAESD
 * decoding; it replaces the request's sampler_name, scheduler, steps and cfg_scale (see fast-request.ts).
 *
 * Absent fields take the CLI's defaults (steps 25, cfg_scale 5, denoising_strength 0.75 (A1111's), the model's
 * size and scheduler); an empty negative prompt means none. As in A1111, image j of the request (across
 * batch_size and n_iter) has seed + j and draws its noise from that seed alone, so it equals a request
 * for that one image with that seed.
 */
import { readNativePag } from "./pag-request.js";
import { readNativeFreeU } from "./freeu-request.js";
import { invalid } from "./errors.js";
import { resolveSdVae } from "./vae-request.js";
import { readJson, sendJson, type Ctx, type Router } from "./http.js";
import { generateForRequest, type AppState } from "./generation.js";
import { DEFAULTS, Fields, checkSampler, checkSide, checkStrength, decodeBase64Image, finishSpec, readSeed, readSides } from "./validation.js";
import { checkSettings, checkUnsupportedFields, unipcOverrides } from "./a1111-settings.js";
import { readA1111ClipSkip } from "./clip-skip-request.js";
import { keepSettings } from "./routes-a1111-lists.js";
import { resolveSchedulerName } from "../schedulers/index.js";
import { a1111ListRoutes } from "./routes-a1111-lists.js";
import type { JobOutput, JobSpec } from "./job.js";
import { appendTags, readLoras } from "./lora-request.js";
import { applyRequestStyles, readStyles } from "./styles-request.js";
import { FAST_JOB, readPreset } from "./fast-request.js";
import { readHires } from "./hires-request.js";
import { readA1111Refiner } from "./refiner-request.js";
import { hiresInfoFields, refinerInfoFields } from "./run-job.js";
import { checkMask, readInpaintSettings, readMaskField } from "./inpaint-request.js";
import { inpaintInfoFields } from "./inpaint-info.js";
import { encodePng, type RgbImage } from "../image/png.js";
import { a1111Resize, type A1111ResizeMode } from "../image/resize-modes.js";
import type { Limits } from "./validation.js";

/** A1111's default denoising_strength for img2img (processing.py), not the CLI's 0.3. */
const A1111_IMG2IMG_STRENGTH = 0.75;

/**
 * The init image (and mask) at the output size, as A1111 fits them: width / height (absent: the init
 * image's own) with resize_mode 0 just resize, 1 crop and resize, 2 resize and fill (PIL-exact Lanczos;
 * a1111Resize). A mask of another size than the init image is fitted to the output size the same way.
 * (A1111 resizes the mask after blurring it; here the recipe blurs the fitted mask: the same when no
 * resize is needed.)
 */
function readInit(f: Fields, limits: Limits, data: string): { image: RgbImage; fit: (img: RgbImage) => RgbImage } {
  const mode = f.int("resize_mode", 0, 3) ?? 0;
  if (mode === 3) throw invalid("resize_mode 3 (just resize, latent upscale) is not supported; use 0, 1 or 2", "unsupported_feature", "resize_mode");
  const { width, height } = readSides(f, limits);
  const decoded = decodeBase64Image(data, limits, "init_images[0]").image;
  const w = width ?? decoded.width, h = height ?? decoded.height;
  const fit = (img: RgbImage): RgbImage => (img.width === w && img.height === h ? img : a1111Resize(img, w, h, mode as A1111ResizeMode) as RgbImage);
  const image = fit(decoded);
  checkSide("the init image width", image.width, limits, "init_images[0]");
  checkSide("the init image height", image.height, limits, "init_images[0]");
  return { image, fit };
}
import { readA1111ControlNets } from "./controlnet-request.js";

/** sampler_name (or the legacy sampler_index) with A1111 1.9's separate `scheduler` (the schedule type). */
function readSampler(f: Fields): { scheduler?: string; sampler?: string; schedule?: string } {
  return checkSampler(f.string("sampler_name") ?? f.string("sampler_index"), f.string("scheduler"), "sampler_name", "scheduler");
}

interface Parsed {
  spec: JobSpec;
  /** The request echoed with its defaults (A1111's `parameters`). */
  parameters: Record<string, unknown>;
  sendImages: boolean;
  /** The variation seed; A1111 reports it even when it has no effect (subseed_strength 0). */
  subseed: number;
  /** The style names applied (A1111's info.styles). */
  styles: string[];
}

async function parseRequest(body: unknown, state: AppState, img2img: boolean): Promise<Parsed> {
  const { limits } = state;
  const f = Fields.of(body);
  checkUnsupportedFields(f);
  const styles = readStyles(f, state.styles);
  if (!img2img && f.has("mask")) throw invalid("mask belongs to /sdapi/v1/img2img (inpainting), not txt2img", "invalid_value", "mask");
  // only settings this server honours as asked pass (the others are a 400 naming them)
  const settings = checkSettings(f.raw("override_settings"), state.queue.model(), "override_settings");
  const vae = await resolveSdVae(settings.sd_vae ?? state.a1111Options?.sd_vae ?? "Automatic", state, settings.sd_vae !== undefined ? "override_settings.sd_vae" : "sd_vae");
  const fast = readPreset(f, state);
  const askedSteps = f.int("steps", 1, limits.maxSteps) ?? DEFAULTS.steps;
  const askedCfg = f.number("cfg_scale", 0, 100) ?? DEFAULTS.guidanceScale;
  const steps = fast ? FAST_JOB.steps : askedSteps;
  const batchSize = f.int("batch_size", 1, 1_000_000) ?? 1;
  const iterations = f.int("n_iter", 1, 1_000_000) ?? 1;
  const requestedSeed = f.int("seed", -1, Number.MAX_SAFE_INTEGER - 1000) ?? -1;
  // the preset's sampler replaces the request's (still checked: a typo is a 400 either way)
  const asked = readSampler(f);
  const sampler = fast ? { scheduler: FAST_JOB.scheduler, sampler: FAST_JOB.scheduler, schedule: "Automatic" } : asked;
  const spec: JobSpec = {
    prompt: f.string("prompt", limits.maxPromptChars) ?? "",
    negativePrompt: f.string("negative_prompt", limits.maxPromptChars),
    steps,
    guidanceScale: fast ? FAST_JOB.guidanceScale : askedCfg,
    seed: readSeed(f),
    perImageSeeds: true,
    scheduler: sampler.scheduler,
    batchSize,
    iterations,
    ...(fast ? { preset: "fast" as const } : {}),
    ...(vae ? { vae } : {}),
  };
  // A1111's UniPC settings change UniPC only (as there: other samplers do not read them)
  const unipc = unipcOverrides({ ...state.a1111Options, ...settings });
  if (Object.keys(unipc).length && sampler.scheduler && resolveSchedulerName(sampler.scheduler).className === "UniPCMultistepScheduler") spec.schedulerOverrides = unipc;
  const parameters: Record<string, unknown> = { ...f.body };
  let strength: number | undefined;
  let outSize: { width: number; height: number } | undefined;
  if (img2img) {
    const images = f.stringArray("init_images");
    if (!images || images.length === 0) throw invalid("init_images must hold at least one base64 PNG", "missing_field", "init_images");
    const init = readInit(f, limits, images[0]);
    spec.initImage = encodePng(init.image).toString("base64");
    outSize = { width: init.image.width, height: init.image.height };
    const mask = readMaskField(f, limits);
    if (mask) {
      const settings = readInpaintSettings(f);
      spec.inpaint = { mask: checkMask(init.fit(mask), init.image, settings.invertMask, "mask"), ...settings };
    }
    strength = f.number("denoising_strength", 0, 1) ?? A1111_IMG2IMG_STRENGTH;
    checkStrength(strength, steps, "denoising_strength");
    spec.strength = strength;
    parameters.init_images = null;
    if (mask) parameters.mask = null;
  } else if (f.bool("enable_hr")) {
    const hr = await readHires(f, limits, steps, readSides(f, limits), state.queue.model().defaultSize, state.upscalers);
    Object.assign(spec, { width: hr.width, height: hr.height, hires: hr.hires });
    strength = hr.hires.strength;
  } else {
    Object.assign(spec, readSides(f, limits));
  }
  // A1111's variation seeds (subseed -1 draws one, as seed does)
  const subseed = readSeed(f, "subseed");
  const subseedStrength = f.number("subseed_strength", 0, 1) ?? 0;
  if (subseedStrength > 0) Object.assign(spec, { variationSeed: subseed, variationStrength: subseedStrength });
  // A1111's resize seed from: both sides > 0, else off (its default -1)
  const resizeW = f.int("seed_resize_from_w", -1, limits.maxSide), resizeH = f.int("seed_resize_from_h", -1, limits.maxSide);
  if ((resizeW ?? -1) > 0 !== (resizeH ?? -1) > 0) {
    // A1111 would drop a lone side without a word
    const [given, missing] = (resizeW ?? -1) > 0 ? ["seed_resize_from_w", "seed_resize_from_h"] : ["seed_resize_from_h", "seed_resize_from_w"];
    throw invalid(`${given} needs ${missing} > 0 too (resize seed from takes both sides)`, "invalid_value", missing);
  }
  if (resizeW !== undefined && resizeH !== undefined && resizeW > 0 && resizeH > 0) {
    if (resizeW < 8 || resizeH < 8) throw invalid(`seed_resize_from ${resizeW}x${resizeH} is below 8 pixels (one latent pixel)`, "invalid_value", resizeW < 8 ? "seed_resize_from_w" : "seed_resize_from_h");
    spec.seedResizeFrom = { width: resizeW, height: resizeH };
  }
  // A1111's tiling: circular padding in the UNet and the VAE
  if (f.bool("tiling")) spec.tiling = true;
  // this server's own fields (A1111 ignores them): PAG and FreeU as the native API takes them
  readNativePag(f, spec);
  readNativeFreeU(f, spec);
  // one of the served models (checked to its name); absent: the queue's default (POST options)
  if (typeof settings.sd_model_checkpoint === "string") spec.model = settings.sd_model_checkpoint;
  readA1111ClipSkip(f, spec, settings, state.a1111Options ?? {}, state.queue.model());
  // styled before the LoRA tags are read: a style's <lora:...> tags apply, as A1111 parses the styled prompt
  const sent = { prompt: spec.prompt, negativePrompt: spec.negativePrompt ?? "" };
  applyRequestStyles(spec, styles, limits.maxPromptChars);
  const fieldTags = await readLoras(f, spec, state);
  await readA1111ControlNets(f, spec, state);
  readA1111Refiner(f, spec, state.queue.model());
  finishSpec(spec, limits);
  // A1111's parameters echo the request: the prompts as sent (with the loras field's tags), styles unapplied
  Object.assign(parameters, {
    prompt: appendTags(sent.prompt, fieldTags), negative_prompt: sent.negativePrompt, seed: requestedSeed,
    sampler_name: sampler.sampler ?? null, scheduler: sampler.schedule ?? null,
    batch_size: batchSize, n_iter: iterations, steps, cfg_scale: spec.guidanceScale,
    // txt2img leaves denoising_strength (a hires-fix field) as the client sent it, as A1111 echoes it
    width: spec.width ?? outSize?.width ?? null, height: spec.height ?? outSize?.height ?? null, denoising_strength: strength ?? f.raw("denoising_strength") ?? null,
  });
  // the field's LoRAs are tags in the echoed prompt now: sent back as they are, they apply once
  delete parameters.loras;
  // A1111 restores its settings after the job unless told not to: then they stay as the server's (the request is valid by now)
  if (f.bool("override_settings_restore_afterwards") === false) keepSettings(state, settings);
  return { spec, parameters, sendImages: f.bool("send_images") ?? true, subseed, styles: styles.map((s) => s.name) };
}

/** A1111's `info` object. */
function infoJson(spec: JobSpec, output: JobOutput, jobId: string, startedAt: Date, schedule: unknown, subseed: number, styles: string[]): Record<string, unknown> {
  const n = output.images.length;
  return {
    prompt: spec.prompt, all_prompts: Array(n).fill(spec.prompt),
    negative_prompt: spec.negativePrompt ?? "", all_negative_prompts: Array(n).fill(spec.negativePrompt ?? ""),
    seed: spec.seed, all_seeds: output.seeds,
    subseed, all_subseeds: output.seeds.map((_, j) => subseed + j), subseed_strength: spec.variationStrength ?? 0,
    width: output.width, height: output.height, sampler_name: output.sampler, cfg_scale: spec.guidanceScale, steps: spec.steps,
    batch_size: spec.batchSize, n_iter: spec.iterations, restore_faces: false, face_restoration_model: null,
    sd_model_name: output.model, sd_model_hash: null, sd_vae_name: spec.vae?.name ?? null, sd_vae_hash: null,
    seed_resize_from_w: spec.seedResizeFrom?.width ?? -1, seed_resize_from_h: spec.seedResizeFrom?.height ?? -1, denoising_strength: spec.initImage ? spec.strength : spec.hires ? spec.hires.strength : null,
    // A1111 reports a chosen schedule type among these ("Schedule type": "Karras"), and the hires fix's settings
    extra_generation_params: {
      ...(typeof schedule === "string" && schedule !== "Automatic" ? { "Schedule type": schedule } : {}),
      ...(spec.hires ? hiresInfoFields(spec.hires) : {}),
      ...(spec.inpaint ? inpaintInfoFields(spec.inpaint) : {}),
      ...(spec.refiner && spec.refiner.model !== output.model ? refinerInfoFields(spec.refiner) : {}),
    },
    index_of_first_image: 0, infotexts: output.infotexts, styles,
    job_timestamp: timestamp(startedAt), clip_skip: spec.clipSkipInfo ?? 1, is_using_inpainting_conditioning: output.inpaintingConditioning ?? false, version: "ssd1b",
    job_id: jobId,
  };
}

/** A1111's job_timestamp: YYYYMMDDHHMMSS (local time). */
function timestamp(d: Date): string {
  const p = (v: number) => String(v).padStart(2, "0");
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

async function generate(ctx: Ctx<AppState>, img2img: boolean): Promise<void> {
  const { spec, parameters, sendImages, subseed, styles } = await parseRequest(await readJson(ctx.req, ctx.state.limits.maxBodyBytes), ctx.state, img2img);
  const { job, output } = await generateForRequest(ctx, spec);
  sendJson(ctx.res, 200, {
    images: sendImages ? output.images.map((png) => png.toString("base64")) : [],
    parameters,
    info: JSON.stringify(infoJson(spec, output, job.id, new Date(job.startedAt ?? job.createdAt), parameters.scheduler, subseed, styles)),
  });
}

const truthy = (v: string | null) => v !== null && /^(1|true|yes)$/i.test(v);

export function a1111Routes(router: Router<AppState>): void {
  router.on("POST", "/sdapi/v1/txt2img", (ctx) => generate(ctx, false));
  router.on("POST", "/sdapi/v1/img2img", (ctx) => generate(ctx, true));

  router.on("GET", "/sdapi/v1/progress", (ctx) => {
    const { queue } = ctx.state;
    const job = queue.running()[0];
    const { running, queued } = queue.counts();
    const preview = job && !truthy(ctx.url.searchParams.get("skip_current_image")) ? job.preview?.() : undefined;
    sendJson(ctx.res, 200, {
      progress: job ? job.fraction : 0,
      eta_relative: job ? Number(job.etaSeconds().toFixed(3)) : 0,
      state: {
        skipped: false,
        interrupted: job?.interrupted ?? false,
        stopping_generation: false,
        job: job ? job.id : "",
        job_count: running + queued,
        job_timestamp: job ? timestamp(new Date(job.startedAt ?? job.createdAt)) : "0",
        job_no: 0,
        sampling_step: job ? job.step : 0,
        sampling_steps: job ? job.totalSteps || job.spec.steps : 0,
      },
      current_image: preview ? preview.toString("base64") : null,
      textinfo: null,
      current_task: job ? job.id : null,
    });
  });

  router.on("POST", "/sdapi/v1/interrupt", (ctx) => {
    const n = ctx.state.queue.stop("interrupt");
    ctx.state.log(`interrupt: ${n} running job(s)`);
    sendJson(ctx.res, 200, {});
  });

  router.on("POST", "/sdapi/v1/skip", (ctx) => {
    const n = ctx.state.queue.stop("skip");
    ctx.state.log(`skip: ${n} running job(s)`);
    sendJson(ctx.res, 200, {});
  });

  a1111ListRoutes(router);
}
