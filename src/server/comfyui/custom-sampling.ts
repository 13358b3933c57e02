/**
 * ComfyUI's custom sampling nodes, read as the KSampler they amount to (so everything after reads one
 * kind of sampler node):
 *
 *   RandomNoise (noise_seed) ----------------> SamplerCustomAdvanced (noise, guider, sampler, sigmas, latent_image)
 *   CFGGuider (model, positive, negative, cfg) | BasicGuider (model, conditioning: cfg 1) -^
 *   KSamplerSelect (sampler_name) -^   BasicScheduler (model, scheduler, steps, denoise) -^
 *
 *   SamplerCustom (model, add_noise, noise_seed, cfg, positive, negative, sampler, sigmas, latent_image)
 *
 * A sampler node rewritten keeps its id; its output 1 (denoised_output, the last step's prediction,
 * which is the output once the schedule reaches sigma 0) is read as output 0. The guider's and the
 * scheduler's model must be the same.
 */
import { NodeError, nodeFields, type Graph, type GraphNode } from "./graph.js";

export const CUSTOM_SAMPLING_CLASSES = ["SamplerCustomAdvanced", "SamplerCustom", "RandomNoise", "CFGGuider", "BasicGuider", "KSamplerSelect", "BasicScheduler"] as const;

const sameLink = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Rewrites the graph's custom samplers into KSamplers in place. */
export function rewriteCustomSamplers(graph: Graph): void {
  const rewritten: GraphNode[] = [];
  for (const node of graph.nodes.values()) {
    if (node.classType !== "SamplerCustomAdvanced" && node.classType !== "SamplerCustom") continue;
    const select = graph.follow(node, "sampler", { KSamplerSelect: [0] }, "a SAMPLER from KSamplerSelect");
    const sigmas = graph.follow(node, "sigmas", { BasicScheduler: [0] }, "SIGMAS from BasicScheduler");
    const s = nodeFields(sigmas);
    const schedule = { sampler_name: nodeFields(select).string("sampler_name", 50), scheduler: s.string("scheduler", 50), steps: sigmas.inputs.steps, denoise: sigmas.inputs.denoise ?? 1 };
    let inputs: Record<string, unknown>;
    if (node.classType === "SamplerCustom") {
      const add = nodeFields(node).optionalBool("add_noise") ?? true;
      if (!add) throw new NodeError(node, "add_noise false is not run here: the sampler starts from noise", "add_noise");
      inputs = { seed: node.inputs.noise_seed, cfg: node.inputs.cfg, model: node.inputs.model, positive: node.inputs.positive, negative: node.inputs.negative };
    } else {
      const noise = graph.follow(node, "noise", { RandomNoise: [0] }, "a NOISE from RandomNoise");
      const guider = graph.follow(node, "guider", { CFGGuider: [0], BasicGuider: [0] }, "a GUIDER from CFGGuider or BasicGuider");
      const g = guider.inputs;
      // BasicGuider is one conditioning without guidance: cfg 1 (its negative is never evaluated)
      inputs = guider.classType === "CFGGuider"
        ? { seed: noise.inputs.noise_seed, cfg: g.cfg, model: g.model, positive: g.positive, negative: g.negative }
        : { seed: noise.inputs.noise_seed, cfg: 1, model: g.model, positive: g.conditioning, negative: g.conditioning };
    }
    if (!sameLink(sigmas.inputs.model, inputs.model)) throw new NodeError(sigmas, "BasicScheduler must take the sampler's model here", "model");
    node.classType = "KSampler";
    node.inputs = { ...inputs, ...schedule, latent_image: node.inputs.latent_image };
    rewritten.push(node);
  }
  // denoised_output (1) is the output at the schedule's end
  for (const node of graph.nodes.values()) {
    for (const [input, link] of Object.entries(node.inputs)) {
      if (Array.isArray(link) && link[1] === 1 && rewritten.some((r) => r.id === String(link[0]))) node.inputs[input] = [link[0], 0];
    }
  }
}
