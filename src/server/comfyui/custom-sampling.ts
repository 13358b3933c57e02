/**
 * ComfyUI's custom sampling nodes, read as the KSampler or KSamplerAdvanced they amount to (so
 * everything after reads one kind of sampler node):
 *
 *   RandomNoise (noise_seed) | DisableNoise ---> SamplerCustomAdvanced (noise, guider, sampler, sigmas, latent_image)
 *   CFGGuider (model, positive, negative, cfg) | BasicGuider (model, conditioning: cfg 1) -^
 *   KSamplerSelect (sampler_name) -^   SIGMAS -^
 *
 *   SamplerCustom (model, add_noise, noise_seed, cfg, positive, negative, sampler, sigmas, latent_image)
 *
 * SIGMAS: BasicScheduler (KSampler's scheduler, steps, denoise); KarrasScheduler, ExponentialScheduler
 * and BetaSamplingScheduler at their default parameters, which are BasicScheduler's karras,
 * exponential and beta (diffusers takes the model's training sigmas, and no other rho, alpha or beta);
 * SDTurboScheduler's single step (SDXL Turbo's example workflow), sgm_uniform's one step from t = 999;
 * SplitSigmas of one of those: its high_sigmas are KSamplerAdvanced's steps up to end_at_step `step`
 * with leftover noise (a base before a refiner), its low_sigmas the steps from start_at_step `step`
 * (img2img of a VAEEncode, or with the noise disabled, the refiner continuing a base's latents).
 *
 * A sampler node rewritten keeps its id; its output 1 (denoised_output, the last step's prediction,
 * which is the output once the schedule reaches sigma 0) is read as output 0. The guider's and the
 * scheduler's model must come from the same checkpoint (but for a split schedule, which a base and a refiner share).
 */
import { NodeError, nodeFields, type Graph, type GraphNode } from "./graph.js";

export const CUSTOM_SAMPLING_CLASSES = [
  "SamplerCustomAdvanced", "SamplerCustom", "RandomNoise", "DisableNoise", "CFGGuider", "BasicGuider", "KSamplerSelect",
  "BasicScheduler", "KarrasScheduler", "ExponentialScheduler", "BetaSamplingScheduler", "SDTurboScheduler", "SplitSigmas",
] as const;

/** The scheduler nodes whose default parameters are a BasicScheduler scheduler, with those defaults (ComfyUI's). */
export const SIGMA_NODE_DEFAULTS: Readonly<Record<string, { scheduler: string; defaults: Record<string, number> }>> = {
  KarrasScheduler: { scheduler: "karras", defaults: { sigma_max: 14.614642, sigma_min: 0.0291675, rho: 7 } },
  ExponentialScheduler: { scheduler: "exponential", defaults: { sigma_max: 14.614642, sigma_min: 0.0291675 } },
  BetaSamplingScheduler: { scheduler: "beta", defaults: { alpha: 0.6, beta: 0.6 } },
};

const SCHEDULE_NODES = { BasicScheduler: [0], KarrasScheduler: [0], ExponentialScheduler: [0], BetaSamplingScheduler: [0], SDTurboScheduler: [0] };
const SIGMAS = { ...SCHEDULE_NODES, SplitSigmas: [0, 1] };
const SIGMAS_WHAT = "SIGMAS from BasicScheduler, KarrasScheduler, ExponentialScheduler, BetaSamplingScheduler, SDTurboScheduler or SplitSigmas";

/**
 * The checkpoint output a MODEL link comes from through its LoRAs and patches (FreeU), which leave the
 * model's sigmas alone: a scheduler may take the checkpoint's MODEL while the guider takes the patched one.
 */
function modelSource(graph: Graph, link: unknown): string {
  const seen = new Set<string>();
  for (let at = link; ;) {
    const node = Array.isArray(at) ? graph.nodes.get(String(at[0])) : undefined;
    if (!node || node.classType === "CheckpointLoaderSimple" || seen.has(node.id) || !("model" in node.inputs)) return JSON.stringify(at);
    seen.add(node.id);
    at = node.inputs.model;
  }
}

/** A sampler's schedule: KSampler's scheduler inputs, and a SplitSigmas half as KSamplerAdvanced's window. */
interface Schedule {
  inputs: { scheduler: string; steps: unknown; denoise: unknown };
  /** The scheduler node's model (BasicScheduler, BetaSamplingScheduler), which must be the sampler's. */
  model?: { node: GraphNode; link: unknown };
  window?: { half: "high" | "low"; step: number };
}

function scheduleOf(graph: Graph, sampler: GraphNode): Schedule {
  let node = graph.follow(sampler, "sigmas", SIGMAS, SIGMAS_WHAT);
  let window: Schedule["window"];
  if (node.classType === "SplitSigmas") {
    const half = (sampler.inputs.sigmas as [string, number])[1] === 0 ? "high" : "low";
    window = { half, step: nodeFields(node).int("step", 0, 10000) };
    const split = node;
    node = graph.follow(split, "sigmas", SCHEDULE_NODES, "SIGMAS from BasicScheduler, KarrasScheduler, ExponentialScheduler, BetaSamplingScheduler or SDTurboScheduler");
    if (node.classType === "BasicScheduler" && (nodeFields(node).optionalNumber("denoise", 0, 1) ?? 1) !== 1) {
      throw new NodeError(split, "SplitSigmas of a BasicScheduler with denoise below 1 is not run here (split the whole schedule, or use denoise alone)", "sigmas");
    }
  }
  const f = nodeFields(node);
  const model = "model" in node.inputs ? { node, link: node.inputs.model } : undefined;
  if (node.classType === "BasicScheduler") return { inputs: { scheduler: f.string("scheduler", 50), steps: node.inputs.steps, denoise: node.inputs.denoise ?? 1 }, model, window };
  if (node.classType === "SDTurboScheduler") {
    // its one step at denoise 1 is timestep 999, sgm_uniform's (diffusers' "trailing"); more steps (999, 899, ...) have no diffusers schedule
    const steps = f.int("steps", 1, 10), denoise = f.optionalNumber("denoise", 0, 1) ?? 1;
    if (steps !== 1) throw new NodeError(node, `SDTurboScheduler runs 1 step here (its ${steps} timesteps 999, 899, ... have no diffusers schedule; BasicScheduler sgm_uniform spaces ${steps} steps evenly)`, "steps");
    if (denoise !== 1) throw new NodeError(node, "SDTurboScheduler runs at denoise 1 here (a single step from timestep 999)", "denoise");
    return { inputs: { scheduler: "sgm_uniform", steps: 1, denoise: 1 }, model, window };
  }
  const { scheduler, defaults } = SIGMA_NODE_DEFAULTS[node.classType];
  for (const [input, value] of Object.entries(defaults)) {
    const given = f.optionalNumber(input, 0, 5000) ?? value;
    if (Math.abs(given - value) > 1e-6 * value) {
      throw new NodeError(node, `${input} ${given} is not run here: ${node.classType} runs at its default ${input} ${value} (BasicScheduler's ${scheduler}, as diffusers computes it)`, input);
    }
  }
  return { inputs: { scheduler, steps: node.inputs.steps, denoise: 1 }, model, window };
}

/** Rewrites the graph's custom samplers into KSamplers (KSamplerAdvanced for a SplitSigmas half) in place. */
export function rewriteCustomSamplers(graph: Graph): void {
  const toEnd: GraphNode[] = [];
  for (const node of graph.nodes.values()) {
    if (node.classType !== "SamplerCustomAdvanced" && node.classType !== "SamplerCustom") continue;
    const select = graph.follow(node, "sampler", { KSamplerSelect: [0] }, "a SAMPLER from KSamplerSelect");
    const schedule = scheduleOf(graph, node);
    let inputs: { seed: unknown; cfg: unknown; model: unknown; positive: unknown; negative: unknown }, addNoise: boolean;
    if (node.classType === "SamplerCustom") {
      addNoise = nodeFields(node).optionalBool("add_noise") ?? true;
      inputs = { seed: node.inputs.noise_seed, cfg: node.inputs.cfg, model: node.inputs.model, positive: node.inputs.positive, negative: node.inputs.negative };
    } else {
      const noise = graph.follow(node, "noise", { RandomNoise: [0], DisableNoise: [0] }, "a NOISE from RandomNoise or DisableNoise");
      addNoise = noise.classType === "RandomNoise";
      const guider = graph.follow(node, "guider", { CFGGuider: [0], BasicGuider: [0] }, "a GUIDER from CFGGuider or BasicGuider");
      const g = guider.inputs;
      const seed = addNoise ? noise.inputs.noise_seed : 0;
      // BasicGuider is one conditioning without guidance: cfg 1 (its negative is never evaluated)
      inputs = guider.classType === "CFGGuider"
        ? { seed, cfg: g.cfg, model: g.model, positive: g.positive, negative: g.negative }
        : { seed, cfg: 1, model: g.model, positive: g.conditioning, negative: g.conditioning };
    }
    // a split schedule is shared by a base and its refiner, whose SDXL-family models have the same sigmas
    if (schedule.model && !schedule.window && modelSource(graph, schedule.model.link) !== modelSource(graph, inputs.model)) {
      throw new NodeError(schedule.model.node, `${schedule.model.node.classType} must take the sampler's model (or its checkpoint's) here`, "model");
    }
    const common = { ...inputs, sampler_name: nodeFields(select).string("sampler_name", 50), latent_image: node.inputs.latent_image };
    const w = schedule.window;
    if (!w) {
      if (!addNoise) throw new NodeError(node, "the noise disabled is not run here: the sampler starts from noise (a sampler continuing another's latents takes SplitSigmas' low_sigmas)", node.classType === "SamplerCustom" ? "add_noise" : "noise");
      node.classType = "KSampler";
      node.inputs = { ...common, ...schedule.inputs };
      toEnd.push(node);
      continue;
    }
    // KSamplerAdvanced's seed input is noise_seed; a window of the schedule's steps
    const { seed, ...rest } = common;
    const high = w.half === "high";
    node.classType = "KSamplerAdvanced";
    node.inputs = {
      ...rest, noise_seed: seed, scheduler: schedule.inputs.scheduler, steps: schedule.inputs.steps, add_noise: addNoise ? "enable" : "disable",
      start_at_step: high ? 0 : w.step, end_at_step: high ? w.step : 10000, return_with_leftover_noise: high ? "enable" : "disable",
    };
    if (!high) toEnd.push(node);
  }
  // denoised_output (1) is the output at the schedule's end (not of a high_sigmas sampler, which stops early)
  for (const node of graph.nodes.values()) {
    for (const [input, link] of Object.entries(node.inputs)) {
      if (Array.isArray(link) && link[1] === 1 && toEnd.some((r) => r.id === String(link[0]))) node.inputs[input] = [link[0], 0];
    }
  }
}
