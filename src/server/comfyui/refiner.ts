/**
 * ComfyUI's SDXL base + refiner graph (the SDXL example workflow), read as the job's refiner
 * (recipes/refiner.ts with the switch as a step count):
 *
 *   EmptyLatentImage -> KSamplerAdvanced (base: add_noise enable, end_at_step k, return_with_leftover_noise enable)
 *                    -> KSamplerAdvanced (refiner: add_noise disable, start_at_step k, the same steps)
 *                    -> VAEDecode (either checkpoint's VAE: SDXL's base and refiner ship the same one)
 *
 * The base may start from an image instead (VAEEncode, from its start_at_step: img2imgRefined) or an
 * inpainting latent (SetLatentNoiseMask, VAEEncodeForInpaint...: inpaintRefined, the refiner keeping
 * the noise mask, as ComfyUI's latent carries it to the second sampler).
 *
 * The refiner's model is a second CheckpointLoaderSimple (no LoRAs); its prompts are CLIPTextEncode
 * (ComfyUI's refiner conditioning: the image size, aesthetic scores 6 and 2.5, as diffusers' defaults)
 * or CLIPTextEncodeSDXLRefiner (ascore), on its own CLIP, with the base's texts: the refiner here
 * encodes the base's prompt, as diffusers' refiner pipeline does. Sampler, scheduler and cfg are the base's.
 */
import { NodeError, nodeFields, type Graph, type GraphNode } from "./graph.js";
import { readSampler, type SamplerSettings } from "./sampler-node.js";
import type { RefinerSpec } from "../job.js";
import type { Limits } from "../validation.js";

const TEXT = { CLIPTextEncode: [0], CLIPTextEncodeSDXLRefiner: [0] };
const CHECKPOINT_MODEL = { CheckpointLoaderSimple: [0] };
const CHECKPOINT_CLIP = { CheckpointLoaderSimple: [1] };

export interface RefinerGraph {
  /** The job's refiner, its model still the checkpoint's name (workflow.ts finds the served model). */
  refiner: RefinerSpec;
  checkpoint: GraphNode;
}

/** What the refiner sampler asks for, checked against the base sampler's settings and texts. */
export function refinerOf(graph: Graph, sampler: GraphNode, base: SamplerSettings, texts: { prompt: string; negative: string }, size: { width: number; height: number }, limits: Limits): RefinerGraph {
  const s = readSampler(sampler, limits, "refiner");
  if (s.steps !== base.steps) throw new NodeError(sampler, `the refiner's steps (${s.steps}) must be the base's (${base.steps}): one schedule, split at end_at_step`, "steps");
  if (s.startAt !== base.endAt) throw new NodeError(sampler, `start_at_step ${s.startAt} must be the base's end_at_step ${base.endAt}`, "start_at_step");
  if (s.cfg !== base.cfg) throw new NodeError(sampler, `the refiner's cfg (${s.cfg}) must equal the base's (${base.cfg}) here`, "cfg");
  if (s.scheduler.scheduler !== base.scheduler.scheduler || JSON.stringify(s.scheduler.overrides) !== JSON.stringify(base.scheduler.overrides)) {
    throw new NodeError(sampler, "the refiner must run the base's sampler_name and scheduler here", "sampler_name");
  }
  const checkpoint = graph.follow(sampler, "model", CHECKPOINT_MODEL, "a MODEL straight from a CheckpointLoaderSimple (no LoRA on the refiner here)");
  const scores: Partial<Record<"positive" | "negative", number>> = {};
  for (const input of ["positive", "negative"] as const) {
    const node = graph.follow(sampler, input, TEXT, "CONDITIONING from a CLIPTextEncode or CLIPTextEncodeSDXLRefiner");
    const clip = graph.follow(node, "clip", CHECKPOINT_CLIP, "the refiner checkpoint's CLIP");
    if (clip !== checkpoint) throw new NodeError(node, "the refiner's prompts must be encoded with the refiner checkpoint's CLIP", "clip");
    const f = nodeFields(node);
    const text = f.string("text", limits.maxPromptChars);
    const want = input === "positive" ? texts.prompt : texts.negative;
    if (text !== want) throw new NodeError(node, `the refiner encodes the base's ${input} prompt here (${JSON.stringify(want.slice(0, 60))}); give this node the same text`, "text");
    if (node.classType === "CLIPTextEncodeSDXLRefiner") {
      scores[input] = f.number("ascore", 0, 1000);
      const w = f.int("width", 0, 1 << 16), h = f.int("height", 0, 1 << 16);
      if (w !== size.width || h !== size.height) throw new NodeError(node, `width and height (${w}x${h}) must be the image's (${size.width}x${size.height}): the refiner is conditioned on the image size here`, "width");
    }
  }
  return {
    checkpoint,
    refiner: {
      model: nodeFields(checkpoint).string("ckpt_name", 1000), switchStep: base.endAt,
      ...(scores.positive !== undefined ? { aestheticScore: scores.positive } : {}), ...(scores.negative !== undefined ? { negativeAestheticScore: scores.negative } : {}),
    },
  };
}
