/**
 * The ComfyUI server API, so that ComfyUI's clients (SillyTavern, Open WebUI, scripts written for
 * ComfyUI's examples) run unchanged against this server. Each route answers at its path and under
 * /api, as ComfyUI's do:
 *
 *   POST /prompt {prompt, client_id}   -> {prompt_id, number, node_errors: {}}; a 400 with ComfyUI's
 *                                         {error: {type, message, details, extra_info}, node_errors}
 *   GET  /history[/:id], POST /history {clear | delete}
 *   GET  /view?filename=&subfolder=&type=   the images (output, temp) and uploads (input)
 *   POST /upload/image (multipart: image, overwrite)   -> {name, subfolder, type: "input"}
 *   POST /upload/mask (multipart: image, original_ref, overwrite) -> the original with the image's alpha, as an upload
 *   GET  /queue, POST /queue {clear | delete}, POST /interrupt, GET /prompt
 *   GET  /object_info[/:class], /system_stats, /embeddings, /extensions, /models[/:folder]
 *   WS   /ws?clientId=   status, execution_start, executing, progress (+ a binary PNG preview), executed, execution_success,
 *                        execution_error / execution_interrupted (to the client that queued the prompt)
 *
 * A prompt is one job of the shared queue (workflow.ts says which graphs run), so it waits its turn
 * with the other APIs' requests and /v1/jobs/:prompt_id shows it too.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { freemem, totalmem, platform } from "node:os";
import { randomUUID } from "node:crypto";
import { WebSocketServer, type WebSocket } from "ws";
import { HttpError, invalid, notFound } from "../errors.js";
import { readBody, readJson, sendBytes, sendJson, type Ctx, type Router } from "../http.js";
import { FormParts, isFile, isMultipartType, parseMultipart } from "../multipart.js";
import type { AppState } from "../generation.js";
import { loraNote } from "../generation.js";
import { readLoras } from "../lora-request.js";
import { finish as finishControlNets } from "../controlnet-request.js";
import { Fields, checkSide } from "../validation.js";
import { FILE_NAME } from "../file-store.js";
import type { AccessPolicy } from "../access.js";
import { NodeError, PromptError, type GraphNode } from "./graph.js";
import { checkpointNames, compileWorkflow, type CompiledPrompt } from "./workflow.js";
import { ComfyPrompts } from "./prompts.js";
import { ComfyInputs } from "./inputs.js";
import { UpscalerLibraryError } from "../upscaler-library.js";
import { imageOpsSize } from "../image-ops.js";
import { ImageFormatError } from "../../image/errors.js";
import type { ImageOpSpec, InitImageOp } from "../job.js";
import { comfyEmbeddings } from "../embeddings-listing.js";
import { checkEmbeddingNames } from "./embedding-names.js";
import type { GraphImageOp } from "./image-nodes.js";
import { VaeLibraryError } from "../vae-library.js";
import { objectInfo } from "./object-info.js";

/** A client id as ComfyUI's clients make them (uuid4 hex), bounded. */
const CLIENT_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Open sockets at once (each holds little; this bounds what a client that never closes can hold). */
const MAX_SOCKETS = 256;
/** A socket whose client reads nothing gets no more messages past this much unsent. */
const MAX_UNSENT_BYTES = 1 << 20;
/**
 * The largest /prompt body: a graph of the nodes run here is a few KB; ComfyUI's own front end adds
 * its whole UI workflow in extra_data (tens to hundreds of KB).
 */
const MAX_PROMPT_BYTES = 4 << 20;

/** ComfyUI's answer to a prompt it will not run. */
function promptRejected(e: NodeError | PromptError): HttpError {
  const body = e instanceof PromptError
    ? { error: { type: e.type, message: e.message, details: "", extra_info: {} }, node_errors: {} }
    : {
      error: { type: "prompt_outputs_failed_validation", message: "Prompt outputs failed validation", details: `${e.node.classType} ${e.node.id}: ${e.message}`, extra_info: {} },
      node_errors: { [e.node.id]: { errors: [{ type: e.type, message: e.message, details: e.input ? `${e.input}: ${e.message}` : e.message, extra_info: e.input ? { input_name: e.input } : {} }], dependent_outputs: [], class_type: e.node.classType } },
    };
  const err = invalid(`${e instanceof NodeError ? `node ${e.node.id} (${e.node.classType}): ` : ""}${e.message}`, e instanceof PromptError ? e.type : "prompt_outputs_failed_validation");
  return Object.assign(err, { toJSON: () => body });
}

/** An upload request's form: the file part named image, type "input", no sub-folder, overwrite. */
async function uploadForm(ctx: Ctx<AppState>, extra: string[]): Promise<{ form: FormParts; part: { data: Buffer; filename?: string }; overwrite: boolean }> {
  const type = ctx.req.headers["content-type"];
  if (!isMultipartType(type)) {
    ctx.req.resume();
    throw invalid(`send the image as multipart/form-data (a file part named image), got ${type ? JSON.stringify(type) : "no Content-Type"}`, "unsupported_media_type");
  }
  // parsed here rather than with readForm: the part's file name is what LoadImage will call it
  const form = new FormParts(parseMultipart(await readBody(ctx.req, ctx.state.limits.maxBodyBytes), type)).only(["image", "type", "subfolder", "overwrite", ...extra]);
  const part = form.one("image");
  if (!part || !isFile(part)) throw invalid("send the image as a file part named image", "missing_field", "image");
  const folder = form.text("type") || "input";
  if (folder !== "input") throw invalid(`uploads go to type "input" here, not ${JSON.stringify(folder)}`, "invalid_value", "type");
  if (form.text("subfolder")) throw invalid("uploads have no sub-folders here", "invalid_value", "subfolder");
  return { form, part, overwrite: ["true", "1"].includes((form.text("overwrite") ?? "").toLowerCase()) };
}

/** /upload/mask's original_ref: {"filename", "type" (input, output or temp; default output), "subfolder" (none here)}. */
function originalRef(text: string | undefined): { filename: string; type: "input" | "output" | "temp" } {
  let raw: unknown;
  try { raw = JSON.parse(text ?? ""); } catch { throw invalid("original_ref must be JSON: {\"filename\": ..., \"type\": \"input\"}", "invalid_value", "original_ref"); }
  const f = Fields.of(raw);
  const filename = f.string("filename", 200)?.replace(/ \[(input|output|temp)\]$/, "");
  if (!filename) throw invalid("original_ref.filename is required", "missing_field", "original_ref");
  const type = f.oneOf("type", ["input", "output", "temp"] as const) ?? "output";
  if (f.string("subfolder", 200)) throw invalid("original_ref.subfolder: files have no sub-folders here", "invalid_value", "original_ref");
  return { filename, type };
}

export class ComfyUiApi {
  readonly inputs = new ComfyInputs();
  readonly prompts: ComfyPrompts;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 64 << 10 });
  private readonly sockets = new Map<WebSocket, string>();

  constructor(state: AppState) {
    this.prompts = new ComfyPrompts(state.queue, {
      send: (clientId, message) => this.send(clientId, JSON.stringify(message)),
      sendBinary: (clientId, data) => this.send(clientId, data),
      listening: (clientId) => [...this.sockets.values()].some((id) => clientId === undefined || id === clientId),
    });
  }

  private send(clientId: string | undefined, data: string | Buffer): void {
    for (const [ws, id] of this.sockets) {
      if ((clientId === undefined || id === clientId) && ws.bufferedAmount < MAX_UNSENT_BYTES) ws.send(data);
    }
  }

  /** The HTTP server's upgrade listener: /ws (and /api/ws) become ComfyUI sockets; anything else is closed. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, access: AccessPolicy): void {
    const refuse = (status: number, why: string) => {
      socket.end(`HTTP/1.1 ${status} ${why}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://localhost");
    } catch {
      return refuse(400, "Bad Request");
    }
    if (url.pathname !== "/ws" && url.pathname !== "/api/ws") return refuse(404, "Not Found");
    try {
      // the Host and Origin checks of every HTTP request: no other site's page may listen in
      access.check(req);
    } catch (e) {
      return refuse(e instanceof HttpError ? e.status : 403, "Forbidden");
    }
    if (this.sockets.size >= MAX_SOCKETS) return refuse(503, "Service Unavailable");
    const asked = url.searchParams.get("clientId") ?? "";
    const clientId = CLIENT_ID.test(asked) ? asked : randomUUID().replace(/-/g, "");
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.sockets.set(ws, clientId);
      ws.on("close", () => this.sockets.delete(ws));
      ws.on("error", () => ws.terminate());
      // client messages carry nothing ComfyUI acts on; they are read and dropped
      ws.send(JSON.stringify({ type: "status", data: { ...this.prompts.status().data, sid: clientId } }));
    });
  }

  close(): void {
    for (const ws of this.sockets.keys()) ws.terminate();
    this.sockets.clear();
    this.wss.close();
  }

  routes(router: Router<AppState>): void {
    const on = (method: string, path: string, handler: (ctx: Ctx<AppState>) => Promise<void> | void, opts: { multipart?: boolean; plainJson?: boolean } = {}) => {
      router.on(method, path, handler, opts);
      router.on(method, `/api${path}`, handler, opts);
    };
    const body = (ctx: Ctx<AppState>) => readJson(ctx.req, Math.min(ctx.state.limits.maxBodyBytes, MAX_PROMPT_BYTES), { plain: true });

    on("POST", "/prompt", async (ctx) => {
      const f = Fields.of(await body(ctx));
      const clientId = f.string("client_id", 64);
      let compiled: CompiledPrompt;
      // an upscale model before a VAEEncode sets the size the prompt is checked at
      const upscalers = ctx.state.upscalers ? await ctx.state.upscalers.list() : [];
      try {
        compiled = compileWorkflow(f.raw("prompt"), {
          limits: ctx.state.limits, model: ctx.state.queue.model(),
          inputImage: (name) => this.inputs.forVaeEncode(name), upload: (name) => this.inputs.rgba(name), uploadBytes: (name) => this.inputs.file(name)?.data.toString("base64"),
          upscaleScale: (name) => upscalers.find((u) => u.path && u.name === name)?.scale,
        });
        await this.checkLibraries(compiled, ctx.state);
      } catch (e) {
        if (e instanceof NodeError || e instanceof PromptError) throw promptRejected(e);
        throw e;
      }
      const { spec } = compiled;
      const job = await ctx.state.queue.submit(spec);
      const record = this.prompts.add(job, f.raw("prompt"), compiled, clientId);
      ctx.state.log(`job ${job.id}: ComfyUI prompt ${record.number} ${spec.noiseMask ? "inpaint" : spec.initImage ? "img2img" : "txt2img"} seed ${spec.seed}, ${spec.steps} steps, ${spec.batchSize} image(s)${loraNote(spec)}`);
      sendJson(ctx.res, 200, { prompt_id: record.id, number: record.number, node_errors: {} });
    }, { plainJson: true });

    // a plain GET of the socket's path (no Upgrade header) is told what it is
    on("GET", "/ws", () => {
      throw new HttpError(426, "this is ComfyUI's WebSocket: connect with a WebSocket client (ws://HOST/ws?clientId=ID)", "invalid_request_error", "upgrade_required", undefined, { Upgrade: "websocket" });
    });

    on("GET", "/prompt", (ctx) => sendJson(ctx.res, 200, { exec_info: { queue_remaining: this.prompts.remaining() } }));

    on("GET", "/history", (ctx) => {
      const max = Number(ctx.url.searchParams.get("max_items") ?? NaN);
      const ended = this.prompts.ended();
      const shown = Number.isInteger(max) && max >= 0 ? ended.slice(Math.max(0, ended.length - max)) : ended;
      sendJson(ctx.res, 200, Object.fromEntries(shown.map((r) => [r.id, r.history])));
    });
    on("GET", "/history/:id", (ctx) => {
      const r = this.prompts.get(ctx.params.id);
      sendJson(ctx.res, 200, r?.history ? { [r.id]: r.history } : {});
    });
    on("POST", "/history", async (ctx) => {
      const f = Fields.of(await body(ctx));
      if (f.bool("clear")) this.prompts.forget();
      const ids = f.stringArray("delete");
      if (ids) this.prompts.forget(ids);
      sendJson(ctx.res, 200, {});
    }, { plainJson: true });

    on("GET", "/queue", (ctx) => {
      const active = this.prompts.active();
      sendJson(ctx.res, 200, {
        queue_running: active.filter((r) => r.job.status === "running").map((r) => this.prompts.queueEntry(r)),
        queue_pending: active.filter((r) => r.job.status !== "running").map((r) => this.prompts.queueEntry(r)),
      });
    });
    on("POST", "/queue", async (ctx) => {
      const f = Fields.of(await body(ctx));
      const queued = this.prompts.active().filter((r) => r.job.status === "queued");
      const ids = f.stringArray("delete");
      for (const r of queued) if (f.bool("clear") || ids?.includes(r.id)) r.job.cancel("cancelled");
      sendJson(ctx.res, 200, {});
    }, { plainJson: true });
    // ComfyUI stops the running prompt and keeps nothing of it (SillyTavern sends this when its user gives up)
    on("POST", "/interrupt", async (ctx) => {
      const raw = ctx.req.headers["content-length"] && ctx.req.headers["content-length"] !== "0" ? await body(ctx) : {};
      const only = Fields.of(raw ?? {}).string("prompt_id", 100);
      for (const job of ctx.state.queue.running()) if (only === undefined || job.id === only) job.cancel("interrupted");
      sendJson(ctx.res, 200, {});
    }, { plainJson: true });

    on("GET", "/view", (ctx) => {
      const q = ctx.url.searchParams;
      const name = q.get("filename") ?? "", type = q.get("type") || "output", subfolder = q.get("subfolder") ?? "";
      if (!FILE_NAME.test(name)) throw invalid(`filename ${JSON.stringify(name.slice(0, 100))} is not a file name this server makes`, "invalid_value", "filename");
      if (subfolder !== "") throw notFound(`no sub-folder ${JSON.stringify(subfolder.slice(0, 100))} here (every file is at the top)`);
      const file = type === "input" ? this.inputs.file(name) : type === "output" || type === "temp" ? ctx.state.files.get(name) : undefined;
      if (!file) throw notFound(`no ${type} file ${JSON.stringify(name)} (files are kept for an hour)`);
      sendBytes(ctx.res, 200, file.data, file.type, { "Cache-Control": "no-store" });
    });

    on("POST", "/upload/image", async (ctx) => {
      const { part, overwrite } = await uploadForm(ctx, []);
      const name = this.inputs.upload(part.data, part.filename, overwrite, ctx.state.limits);
      sendJson(ctx.res, 200, { name, subfolder: "", type: "input" });
    }, { multipart: true });
    // the mask editor's save: the uploaded mask's alpha laid into the original (an upload or an output) as a new upload
    on("POST", "/upload/mask", async (ctx) => {
      const { form, part, overwrite } = await uploadForm(ctx, ["original_ref"]);
      const ref = originalRef(form.text("original_ref"));
      const file = ref.type === "input" ? this.inputs.file(ref.filename) : FILE_NAME.test(ref.filename) ? ctx.state.files.get(ref.filename) : undefined;
      if (!file) throw notFound(`no ${ref.type} file ${JSON.stringify(ref.filename)} to lay the mask into (original_ref)`);
      const name = this.inputs.uploadMask(part.data, file.data, part.filename, overwrite, ctx.state.limits);
      sendJson(ctx.res, 200, { name, subfolder: "", type: "input" });
    }, { multipart: true });

    on("GET", "/object_info", async (ctx) => sendJson(ctx.res, 200, objectInfo(await this.choices(ctx.state))));
    on("GET", "/object_info/:class", async (ctx) => {
      const all = objectInfo(await this.choices(ctx.state));
      const one = all[ctx.params.class];
      sendJson(ctx.res, 200, one ? { [ctx.params.class]: one } : {});
    });
    on("GET", "/system_stats", (ctx) => {
      sendJson(ctx.res, 200, {
        system: { os: platform(), ram_total: totalmem(), ram_free: freemem(), comfyui_version: "ssd1b", python_version: "", pytorch_version: "", embedded_python: false, argv: process.argv.slice(1) },
        // memory figures of a GPU are not known here (onnxruntime does not report them)
        devices: [{ name: "onnxruntime-node", type: "onnxruntime", index: 0, vram_total: 0, vram_free: 0, torch_vram_total: 0, torch_vram_free: 0 }],
      });
    });
    on("GET", "/embeddings", (ctx) => sendJson(ctx.res, 200, comfyEmbeddings(ctx.state.embeddings)));
    on("GET", "/extensions", (ctx) => sendJson(ctx.res, 200, []));
    on("GET", "/models", (ctx) => sendJson(ctx.res, 200, ["checkpoints", "loras"]));
    on("GET", "/models/:folder", async (ctx) => {
      const c = await this.choices(ctx.state);
      const lists: Record<string, string[]> = { checkpoints: c.checkpoints, loras: c.loras };
      const list = lists[ctx.params.folder];
      if (!list) throw notFound(`no model folder ${JSON.stringify(ctx.params.folder)} (there are checkpoints and loras)`);
      sendJson(ctx.res, 200, list);
    });
  }

  private async choices(state: AppState) {
    return {
      checkpoints: checkpointNames(state.queue.model()),
      loras: state.loras ? (await state.loras.names()).map((n) => `${n}.safetensors`) : [],
      controlnets: state.controlnets ? await state.controlnets.names() : [],
      vaes: state.vaes ? (await state.vaes.list()).map((v) => v.name) : [],
      upscaleModels: state.upscalers ? (await state.upscalers.list()).filter((u) => u.path).map((u) => `${u.name}.safetensors`) : [],
      inputs: this.inputs.names(),
      maxSide: state.limits.maxSide, maxImages: state.limits.maxImages, maxSteps: state.limits.maxSteps,
    };
  }

  /** Image nodes with their UpscaleModelLoader files looked up in --upscaler-dir, and each model's scale by path. */
  private async resolveImageOps(graphOps: readonly GraphImageOp[], state: AppState, scales: Map<string, number>): Promise<ImageOpSpec[]> {
    const ops: ImageOpSpec[] = [];
    for (const op of graphOps) {
      if (op.op !== "upscale-model") { ops.push(op); continue; }
      const reject = (why: string) => new NodeError(op.node, `Value not in list: model_name: ${JSON.stringify(op.name)} (${why})`, "model_name");
      if (!state.upscalers) throw reject("this server has no --upscaler-dir");
      let entry;
      try { entry = await state.upscalers.get(op.name); } catch (e) { if (e instanceof UpscalerLibraryError) throw reject(e.message); throw e; }
      if (!entry.path) throw reject(`${op.name} is a resize, not a model: use ImageScaleBy`);
      scales.set(entry.path, entry.scale);
      ops.push({ op: "upscale-model", name: entry.name, path: entry.path });
    }
    return ops;
  }

  /**
   * The image nodes of a pixel-space hires pass (their size becomes the second pass's, in whole
   * multiples of 8) and after the VAEDecode, looked up and their sizes checked.
   */
  private async finishImageOps(compiled: CompiledPrompt, state: AppState): Promise<void> {
    const { spec } = compiled;
    const scales = new Map<string, number>();
    const sizeAfter = (ops: ImageOpSpec[], from: { width: number; height: number }) => {
      try {
        return imageOpsSize(ops, from.width, from.height, (op) => scales.get(op.path)!);
      } catch (e) {
        if (e instanceof ImageFormatError) throw new PromptError("prompt_outputs_failed_validation", (e as Error).message);
        throw e;
      }
    };
    // composites were refused before VAEEncode by compileWorkflow
    if (compiled.initImageOps) spec.initImageOps = await this.resolveImageOps(compiled.initImageOps, state, scales) as InitImageOp[];
    let decoded = compiled.decodedSize;
    if (compiled.hiresPixelOps && spec.hires) {
      const ops = await this.resolveImageOps(compiled.hiresPixelOps, state, scales);
      const size = sizeAfter(ops, decoded);
      if (size.width % 8 || size.height % 8) {
        throw new PromptError("prompt_outputs_failed_validation", `the image nodes before the second sampler's VAEEncode make ${size.width}x${size.height}; the second pass needs whole multiples of 8 here (ComfyUI would crop it)`);
      }
      try {
        checkSide("the second pass's width", size.width, state.limits);
        checkSide("the second pass's height", size.height, state.limits);
      } catch (e) {
        if (e instanceof HttpError) throw new PromptError("prompt_outputs_failed_validation", e.message);
        throw e;
      }
      spec.hires = { ...spec.hires, imageOps: ops, width: size.width, height: size.height };
      decoded = size;
    }
    if (compiled.imageOps.length) {
      const ops = await this.resolveImageOps(compiled.imageOps, state, scales);
      sizeAfter(ops, decoded);
      spec.imageOps = ops;
    }
  }

  /** A VAELoader's vae_name looked up in --vae-dir. */
  private async vaeFile(name: string, node: GraphNode, state: AppState): Promise<{ name: string; path: string }> {
    const reject = (why: string) => new NodeError(node, `Value not in list: vae_name: ${JSON.stringify(name)} (${why})`, "vae_name");
    if (!state.vaes) throw reject("this server has no --vae-dir: each checkpoint decodes with its own VAE");
    try {
      const entry = await state.vaes.get(name);
      return { name: entry.name, path: entry.path };
    } catch (e) {
      if (e instanceof VaeLibraryError) throw reject(e.message);
      throw e;
    }
  }

  /**
   * LoraLoader's LoRAs checked against --lora-dir (and `<lora:...>` tags in the prompts, as every API
   * reads them), the ControlNets against --controlnet-dir.
   */
  private async checkLibraries(compiled: CompiledPrompt, state: AppState): Promise<void> {
    if (compiled.vae) compiled.spec.vae = await this.vaeFile(compiled.vae.name, compiled.vae.node, state);
    await this.finishImageOps(compiled, state);
    checkEmbeddingNames(compiled.spec, state.embeddings);
    try {
      await readLoras(Fields.of({ loras: compiled.loras.map(({ name, weight, textEncoderWeight }) => ({ name, weight, text_encoder_weight: textEncoderWeight })) }), compiled.spec, state);
      await finishControlNets(compiled.controlnets, compiled.spec, state, "control_net_name", false);
    } catch (e) {
      if (e instanceof HttpError) throw new PromptError("prompt_outputs_failed_validation", e.message);
      throw e;
    }
  }
}
