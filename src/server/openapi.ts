/**
 * The server's routes as an OpenAPI 3.0 document, written by hand (GET /openapi.json), and the
 * /docs page made from it: plain HTML with its style inline, no script and nothing fetched from
 * elsewhere (the server may run where no CDN can be reached).
 */
type Schema = Record<string, unknown>;

const str = (description?: string): Schema => ({ type: "string", ...(description ? { description } : {}) });
const int = (description?: string): Schema => ({ type: "integer", ...(description ? { description } : {}) });
const num = (description?: string): Schema => ({ type: "number", ...(description ? { description } : {}) });
const bool = (description?: string): Schema => ({ type: "boolean", ...(description ? { description } : {}) });
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({ type: "object", properties, ...(required.length ? { required } : {}) });
const arr = (items: Schema): Schema => ({ type: "array", items });

const ERROR = obj({ error: obj({ message: str(), type: str(), code: str(), param: { type: "string", nullable: true } }) });

const A1111_GENERATE = obj({
  prompt: str(), negative_prompt: str(), seed: int("-1: random; image j of the request uses seed + j"),
  sampler_name: str("an A1111 sampler (GET /sdapi/v1/samplers)"), scheduler: str("schedule type (GET /sdapi/v1/schedulers)"),
  batch_size: int(), n_iter: int(), steps: int(), cfg_scale: num(), width: int(), height: int(),
  subseed: int("variation seed (-1: random); image j uses subseed + j"),
  subseed_strength: num("0..1: how far each image's noise moves towards its variation seed's (A1111's slerp)"), seed_resize_from_w: int("with seed_resize_from_h (both > 0): each image's seed noise drawn at that size, centred"), seed_resize_from_h: int(),
  send_images: bool(), tiling: bool("circular padding in every UNet and VAE conv: a seamless tile"),
  refiner_checkpoint: str("a served model (GET /sdapi/v1/sd-models) that finishes the run from refiner_switch_at; \"None\" or \"\": none"),
  refiner_switch_at: num("the fraction of the noise schedule the base runs, in (0, 1); default 0.8"),
  override_settings: { ...obj({}), description: "A1111 settings for this request: sd_model_checkpoint, sd_vae, CLIP_stop_at_last_layers, sdxl_clip_l_skip, samples_format, uni_pc_*" },
  clip_skip: int("SD.Next's field: CLIP_stop_at_last_layers for this request"),
  styles: arr(str("a style of GET /sdapi/v1/prompt-styles (--styles-file); applied in order to the prompts, an unknown name is a 400")),
  preset: str("\"fast\" on servers started with --fast"), loras: arr(obj({ name: str(), weight: num(), text_encoder_weight: num("the text encoders' own weight (default weight), as <lora:NAME:TE:UNET>") })),
  alwayson_scripts: obj({ controlnet: obj({ args: arr(obj({ enabled: bool(), image: str("base64"), module: str("none | canny"), model: str("GET /controlnet/model_list"), weight: num(), guidance_start: num(), guidance_end: num(), control_mode: str(), resize_mode: str(), pixel_perfect: bool(), processor_res: int(), threshold_a: num(), threshold_b: num() })) }) }),
});

/** txt2img's hires fix fields (enable_hr). */
const A1111_HIRES = {
  enable_hr: bool("the hires fix: a first pass at width x height, an upscale, an img2img second pass"),
  hr_scale: num("target = size x hr_scale (default 2), rounded down to a multiple of 8"),
  hr_resize_x: int("target width (0: from hr_scale or the aspect ratio)"), hr_resize_y: int("target height"),
  hr_upscaler: str("a latent mode (GET /sdapi/v1/latent-upscale-modes) or an upscaler (GET /sdapi/v1/upscalers)"),
  hr_second_pass_steps: int("0: steps"), denoising_strength: num("the second pass's strength (default 0.7)"),
  hr_sampler_name: str(), hr_scheduler: str(), hr_prompt: str(), hr_negative_prompt: str(),
  firstphase_width: int("older clients: the first pass's size (width, height are then the target)"), firstphase_height: int(),
};

const A1111_ANSWER = obj({ images: arr(str("base64 PNG")), parameters: obj({}), info: str("JSON: seed, all_seeds, all_subseeds, infotexts, ...") });

interface Op { summary: string; body?: Schema; answer?: Schema; type?: string; /** The body is multipart/form-data (file uploads). */ form?: boolean }

function op(o: Op): Record<string, unknown> {
  return {
    summary: o.summary,
    ...(o.body ? { requestBody: { required: true, content: { [o.form ? "multipart/form-data" : "application/json"]: { schema: o.body } } } } : {}),
    responses: {
      200: { description: "OK", content: { [o.type ?? "application/json"]: { schema: o.answer ?? {} } } },
      default: { description: "an error", content: { "application/json": { schema: ERROR } } },
    },
  };
}

const SEGMIND_SUBMIT = obj({ request_id: str(), status: str("QUEUED"), poll_url: str(), status_url: str(), response_url: str() });

export const OPENAPI = {
  openapi: "3.0.3",
  info: { title: "ssd1b server", version: "1", description: "SSD-1B / SDXL text-to-image: OpenAI Images, AUTOMATIC1111 (/sdapi/v1), ComfyUI (/prompt, /history, /view, /ws), Segmind and native jobs. Request bodies are JSON (Content-Type: application/json), except the image uploads of OpenAI and ComfyUI (multipart/form-data)." },
  paths: {
    "/": { get: op({ summary: "the web page", type: "text/html" }) },
    "/health": { get: op({ summary: "status, queue and model" }) },
    "/files/{name}": { get: op({ summary: "an image made earlier", type: "image/png" }) },
    "/v1/jobs": { post: op({ summary: "queue a job (202): {prompt, negative_prompt, steps, guidance_scale, seed, width, height | size, n, scheduler, init_image, strength, loras, preset, controlnets, guess_mode, clip_skip (diffusers' count), tiling, freeu (true or {b1, b2, s1, s2, variant}), pag_scale, pag_adaptive_scale, pag_applied_layers, prompt_syntax (diffusers, a1111, comfyui), variation_seed, variation_strength, model (one of GET /v1/models)}", body: obj({ prompt: str() }, ["prompt"]) }) },
    "/v1/jobs/{id}": { get: op({ summary: "a job's status and result" }), delete: op({ summary: "cancel a job" }) },
    "/v1/jobs/{id}/events": { get: op({ summary: "a job's progress as server-sent events", type: "text/event-stream" }) },
    "/v1/history": { get: op({ summary: "the stored images, newest first, with their parameters (?offset=0&limit=24, limit at most 100)" }) },
    "/v1/queue": { get: op({ summary: "every client's running and queued jobs: prompt, state, progress" }) },
    "/v1/images/generations": { post: op({ summary: "OpenAI images.generate (b64_json or url)", body: obj({ prompt: str(), n: int(), size: str(), response_format: str() }, ["prompt"]), answer: obj({ created: int(), data: arr(obj({ b64_json: str(), url: str() })) }) }) },
    "/v1/images/edits": { post: op({ summary: "OpenAI images.edit: inpaint the image where the mask (or the image) is fully transparent", form: true, body: obj({ image: { type: "string", format: "binary" }, mask: { type: "string", format: "binary", description: "PNG: alpha 0 = edit" }, prompt: str(), n: int(), size: str(), response_format: str(), strength: num("extension, default 1") }, ["image", "prompt"]) }) },
    "/v1/images/variations": { post: op({ summary: "OpenAI images.createVariation: img2img of the image with an empty prompt (strength 0.75)", form: true, body: obj({ image: { type: "string", format: "binary" }, n: int(), size: str(), response_format: str() }, ["image"]) }) },
    "/v1/models": { get: op({ summary: "OpenAI models.list: the loaded model", answer: obj({ object: str(), data: arr(obj({ id: str(), object: str(), created: int(), owned_by: str() })) }) }) },
    "/v1/ssd-1b": { post: op({ summary: "Segmind's SSD-1B API (PNG bytes, or base64 JSON)", body: obj({ prompt: str(), samples: int(), base64: bool() }, ["prompt"]) }) },
    "/v1/ssd-img2img": { post: op({ summary: "Segmind's SSD Img2Img (PNG bytes, or base64 JSON)", body: obj({ image: str("base64 PNG / JPEG"), prompt: str(), strength: num("default 0.9"), samples: int(), base64: bool() }, ["image", "prompt"]) }) },
    "/v2/ssd-1b": { post: op({ summary: "Segmind's async SSD-1B (submit, then poll status_url / response_url)", body: obj({ prompt: str(), samples: int(), base64: bool() }, ["prompt"]), answer: SEGMIND_SUBMIT }) },
    "/v2/ssd-img2img": { post: op({ summary: "Segmind's async SSD Img2Img", body: obj({ image: str("base64 PNG / JPEG"), prompt: str(), strength: num("default 0.9"), samples: int(), base64: bool() }, ["image", "prompt"]), answer: SEGMIND_SUBMIT }) },
    "/v2/requests/{id}/status": { get: op({ summary: "Segmind async status: QUEUED, PROCESSING, COMPLETED, FAILED", answer: obj({ status: str(), request_id: str(), metrics: obj({}) }) }) },
    "/v2/requests/{id}": { get: op({ summary: "Segmind async result: output (first image URL), outputs, seeds", answer: obj({ status: str(), output: str(), outputs: arr(str()) }) }) },
    "/v1/requests/{id}": { get: op({ summary: "Segmind's v1 poll_url: the same as /v2/requests/{id}" }) },
    "/sdapi/v1/txt2img": { post: op({ summary: "A1111 txt2img", body: { ...A1111_GENERATE, properties: { ...(A1111_GENERATE.properties as object), ...A1111_HIRES } }, answer: A1111_ANSWER }) },
    "/sdapi/v1/img2img": { post: op({ summary: "A1111 img2img", body: { ...A1111_GENERATE, properties: { ...(A1111_GENERATE.properties as object), init_images: arr(str()), denoising_strength: num("default 0.75"), resize_mode: int(), mask: str("base64 PNG / JPEG, white = repaint"), mask_blur: int(), mask_blur_x: int(), mask_blur_y: int(), inpainting_fill: int("0 fill, 1 original, 2 latent noise, 3 latent nothing"), inpaint_full_res: bool(), inpaint_full_res_padding: int(), inpainting_mask_invert: int() } }, answer: A1111_ANSWER }) },
    "/sdapi/v1/progress": { get: op({ summary: "progress of the running job with a preview" }) },
    "/sdapi/v1/interrupt": { post: op({ summary: "stop the running job: it answers 200 with what it made" }) },
    "/sdapi/v1/skip": { post: op({ summary: "end the current batch where it is and go on with the next iteration" }) },
    "/sdapi/v1/options": { get: op({ summary: "settings" }), post: op({ summary: "change settings (known keys only)", body: obj({}) }) },
    "/sdapi/v1/sd-models": { get: op({ summary: "the served model", answer: arr(obj({ title: str(), model_name: str(), filename: str() })) }) },
    "/sdapi/v1/samplers": { get: op({ summary: "samplers", answer: arr(obj({ name: str(), aliases: arr(str()) })) }) },
    "/sdapi/v1/schedulers": { get: op({ summary: "schedule types", answer: arr(obj({ name: str(), label: str() })) }) },
    "/sdapi/v1/upscalers": { get: op({ summary: "upscalers", answer: arr(obj({ name: str(), scale: num() })) }) },
    "/sdapi/v1/latent-upscale-modes": { get: op({ summary: "latent upscale modes", answer: arr(obj({ name: str() })) }) },
    "/sdapi/v1/sd-vae": { get: op({ summary: "the VAE files of --vae-dir (none without one: the model's own VAE)", answer: arr(obj({ model_name: str(), filename: str() })) }) },
    "/sdapi/v1/sd-modules": { get: op({ summary: "extra modules (none)", answer: arr(obj({ model_name: str(), filename: str() })) }) },
    "/sdapi/v1/embeddings": { get: op({ summary: "the textual inversions of --embedding and --embeddings-dir (SDXL clip_l + clip_g files); skipped: the folder's other files", answer: obj({ loaded: obj({}), skipped: obj({}) }) }) },
    "/sdapi/v1/loras": { get: op({ summary: "the LoRAs of --lora-dir", answer: arr(obj({ name: str(), alias: str(), path: str() })) }) },
    "/sdapi/v1/prompt-styles": { get: op({ summary: "the styles of --styles-file (A1111's styles.csv; none without it)", answer: arr(obj({ name: str(), prompt: str(), negative_prompt: str() })) }) },
    "/sdapi/v1/refresh-loras": { post: op({ summary: "read --lora-dir again" }) },
    "/sdapi/v1/refresh-vae": { post: op({ summary: "nothing to do: --vae-dir is read on every listing" }) },
    "/sdapi/v1/refresh-checkpoints": { post: op({ summary: "nothing to do: the served models are fixed at start" }) },
    "/sdapi/v1/refresh-embeddings": { post: op({ summary: "nothing to do: the embeddings are compiled into the text encoders at start (restart for new files)" }) },
    "/sdapi/v1/face-restorers": { get: op({ summary: "face restorers (none)", answer: arr(obj({ name: str() })) }) },
    "/sdapi/v1/hypernetworks": { get: op({ summary: "hypernetworks (none)", answer: arr(obj({ name: str(), path: str() })) }) },
    "/sdapi/v1/realesrgan-models": { get: op({ summary: "the --upscaler-dir models", answer: arr(obj({ name: str(), path: str(), scale: num() })) }) },
    "/sdapi/v1/scripts": { get: op({ summary: "scripts: the controlnet alwayson script", answer: obj({ txt2img: arr(str()), img2img: arr(str()) }) }) },
    "/sdapi/v1/memory": { get: op({ summary: "RAM figures (no GPU figures)", answer: obj({ ram: obj({ free: num(), used: num(), total: num() }), cuda: obj({}) }) }) },
    "/sdapi/v1/cmd-flags": { get: op({ summary: "the server's settings under A1111's flag names" }) },
    "/sdapi/v1/png-info": { post: op({ summary: "the parameters text of a PNG", body: obj({ image: str("base64 PNG") }, ["image"]), answer: obj({ info: str(), items: obj({}), parameters: obj({}) }) }) },
    "/controlnet/version": { get: op({ summary: "sd-webui-controlnet API version", answer: obj({ version: int() }) }) },
    "/controlnet/model_list": { get: op({ summary: "the ControlNets of --controlnet-dir", answer: obj({ model_list: arr(str()) }) }) },
    "/controlnet/module_list": { get: op({ summary: "preprocessors (none, canny)", answer: obj({ module_list: arr(str()), module_detail: obj({}) }) }) },
    "/controlnet/detect": { post: op({ summary: "run a preprocessor", body: obj({ controlnet_module: str(), controlnet_input_images: arr(str("base64 image")), controlnet_processor_res: int(), controlnet_threshold_a: num(), controlnet_threshold_b: num() }, ["controlnet_input_images"]), answer: obj({ images: arr(str("base64 PNG")), info: str() }) }) },
    "/prompt": {
      post: op({ summary: "ComfyUI: queue a prompt (API-format graph: CheckpointLoaderSimple, LoraLoader, LoraLoaderModelOnly, CLIPSetLastLayer, CLIPTextEncode, CLIPTextEncodeSDXL, EmptyLatentImage, LoadImage, VAEEncode, ControlNetLoader, ControlNetApplyAdvanced, KSampler, KSamplerAdvanced, LatentUpscaleBy, LatentUpscale, VAEDecode, SaveImage, PreviewImage); also as text/plain from clients without Origin", body: obj({ prompt: obj({}), client_id: str("the /ws client that gets its messages") }, ["prompt"]), answer: obj({ prompt_id: str(), number: int(), node_errors: obj({}) }) }),
      get: op({ summary: "ComfyUI: {exec_info: {queue_remaining}}" }),
    },
    "/history": { get: op({ summary: "ComfyUI: ended prompts by id: outputs (images), status (?max_items=N)" }), post: op({ summary: "ComfyUI: forget ended prompts", body: obj({ clear: bool(), delete: arr(str()) }) }) },
    "/history/{id}": { get: op({ summary: "ComfyUI: one ended prompt ({} until it ends)" }) },
    "/view": { get: op({ summary: "ComfyUI: an image by ?filename=&subfolder=&type= (output, temp, input)", type: "image/png" }) },
    "/upload/image": { post: op({ summary: "ComfyUI: upload an image for LoadImage", form: true, body: obj({ image: { type: "string", format: "binary" }, overwrite: str("true: replace one of that name") }, ["image"]), answer: obj({ name: str(), subfolder: str(), type: str() }) }) },
    "/queue": { get: op({ summary: "ComfyUI: running and pending prompts" }), post: op({ summary: "ComfyUI: cancel pending prompts", body: obj({ clear: bool(), delete: arr(str()) }) }) },
    "/interrupt": { post: op({ summary: "ComfyUI: end the running prompt, keeping nothing of it ({prompt_id}: only that one)" }) },
    "/object_info": { get: op({ summary: "ComfyUI: the node classes run here, with their choices (checkpoints, LoRAs, samplers, schedulers)" }) },
    "/system_stats": { get: op({ summary: "ComfyUI: system and device" }) },
    "/ws": { get: op({ summary: "ComfyUI: WebSocket (?clientId=): status, execution_start, executing, progress, executed, execution_success, execution_error" }) },
    "/internal/ping": { get: op({ summary: "answers {}" }) },
    "/openapi.json": { get: op({ summary: "this document" }) },
    "/docs": { get: op({ summary: "this document as a page", type: "text/html" }) },
  },
} as const;

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function fields(schema: unknown): string {
  const props = (schema as { properties?: Record<string, { type?: string; description?: string }> } | undefined)?.properties;
  if (!props || Object.keys(props).length === 0) return "";
  return Object.entries(props).map(([k, v]) => `<code>${escape(k)}</code> <i>${escape(v.type ?? "")}</i>${v.description ? ` ${escape(v.description)}` : ""}`).join("<br>");
}

/** The /docs page. */
export function docsPage(): string {
  const rows: string[] = [];
  for (const [path, ops] of Object.entries(OPENAPI.paths)) {
    for (const [method, o] of Object.entries(ops as unknown as Record<string, { summary: string; requestBody?: { content: Record<string, { schema: unknown }> } }>)) {
      const body = o.requestBody ? fields(Object.values(o.requestBody.content)[0].schema) : "";
      rows.push(`<tr><td class="m">${method.toUpperCase()}</td><td><code>${escape(path)}</code></td><td>${escape(o.summary)}${body ? `<div class="f">${body}</div>` : ""}</td></tr>`);
    }
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(OPENAPI.info.title)} API</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}table{border-collapse:collapse;width:100%}td{border-top:1px solid #ddd;padding:.4em .6em;vertical-align:top}.m{font-weight:600;width:4em}.f{color:#555;margin-top:.3em;font-size:13px}code{background:#f4f4f4;padding:0 .2em}</style>
</head><body><h1>${escape(OPENAPI.info.title)} API</h1><p>${escape(OPENAPI.info.description)} The machine-readable document: <a href="/openapi.json">/openapi.json</a>.</p>
<table>${rows.join("\n")}</table></body></html>`;
}
