/**
 * ComfyUI's ConditioningCombine on a sampler's positive input: the conditionings of its prompts are
 * each evaluated and their predictions averaged (calc_cond_batch: Σ pred / Σ strength, strength 1 over
 * the whole image), which under CFG is uncond + cfg·Σ (1/n)·(cond_i - uncond): the pipeline's
 * sub-prompts with weights 1/n. Nested combines flatten; each leaf is a CLIPTextEncode(SDXL) on the
 * same CLIP, with the same sizes (one size conditioning per block here).
 */
import { NodeError, type Graph, type GraphNode } from "./graph.js";

const COMBINE = "ConditioningCombine";
const LEAVES = { CLIPTextEncode: [0], CLIPTextEncodeSDXL: [0], [COMBINE]: [0] };

/** Sub-prompts combined at most (each is a block of the UNet batch; the pipeline's MAX_SUB_PROMPTS). */
const MAX_COMBINED = 8;

/** The text nodes a ConditioningCombine on `sampler`'s positive input averages, or undefined when it has none. */
export function combinedPositive(graph: Graph, sampler: GraphNode): GraphNode[] | undefined {
  const link = sampler.inputs.positive;
  const first = Array.isArray(link) ? graph.nodes.get(String(link[0])) : undefined;
  if (first?.classType !== COMBINE) return undefined;
  const leaves: GraphNode[] = [];
  const seen = new Set<GraphNode>();
  const walk = (node: GraphNode) => {
    if (seen.has(node)) throw new NodeError(node, "the ConditioningCombine nodes link in a loop", "conditioning_1");
    seen.add(node);
    for (const input of ["conditioning_1", "conditioning_2"]) {
      const from = graph.follow(node, input, LEAVES, "CONDITIONING from a CLIPTextEncode or ConditioningCombine");
      if (from.classType === COMBINE) walk(from);
      else leaves.push(from);
    }
  };
  walk(first);
  if (leaves.length > MAX_COMBINED) throw new NodeError(first, `${leaves.length} prompts combined; at most ${MAX_COMBINED} here (each is a block of the UNet batch)`, "conditioning_1");
  return leaves;
}

/** One CLIP and one size conditioning for every combined prompt. */
export function checkCombinedTexts(leaves: GraphNode[], texts: { sizes?: unknown }[]): void {
  const clip = JSON.stringify(leaves[0].inputs.clip), sizes = JSON.stringify(texts[0].sizes);
  leaves.forEach((leaf, i) => {
    if (JSON.stringify(leaf.inputs.clip) !== clip) throw new NodeError(leaf, "the combined prompts must take the same CLIP here", "clip");
    if (JSON.stringify(texts[i].sizes) !== sizes) throw new NodeError(leaf, "the combined prompts must have the same sizes here (one size conditioning for all)", "width");
  });
}
