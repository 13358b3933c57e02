/**
 * A ComfyUI prompt in its API format (what "Save (API Format)" writes and clients POST to /prompt):
 * `{ "<node id>": { "class_type": "KSampler", "inputs": { "steps": 20, "model": ["4", 0], ... } } }`,
 * where an input that is a `[node id, output index]` pair is a link to another node's output. This
 * file reads that shape and follows links; workflow.ts gives the nodes their meaning.
 */
import { Fields, checkSide, type Limits } from "../validation.js";

export interface GraphNode {
  id: string;
  classType: string;
  inputs: Record<string, unknown>;
}

/** A problem with one node's input: ComfyUI's node_errors entry. */
export class NodeError extends Error {
  constructor(readonly node: GraphNode, message: string, readonly input?: string, readonly type = "value_not_valid") {
    super(message);
  }
}

/** A problem with the prompt as a whole: ComfyUI's top-level error type ("invalid_prompt", "prompt_no_outputs"). */
export class PromptError extends Error {
  constructor(readonly type: string, message: string) {
    super(message);
  }
}

/** ComfyUI's core primitive nodes (comfy_extras/nodes_primitive.py): their one output is their `value` input. */
export const PRIMITIVE_CLASSES: readonly string[] = ["PrimitiveString", "PrimitiveStringMultiline", "PrimitiveInt", "PrimitiveFloat", "PrimitiveBoolean"];

/** Most nodes in one prompt (a txt2img graph has 7; this bounds the work a hostile prompt makes). */
export const MAX_NODES = 500;

const typeName = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

export class Graph {
  readonly nodes = new Map<string, GraphNode>();

  constructor(prompt: unknown) {
    if (typeof prompt !== "object" || prompt === null || Array.isArray(prompt)) {
      throw new PromptError("invalid_prompt", `the prompt must be an object of nodes ({"3": {"class_type": "KSampler", "inputs": {...}}, ...}), got ${typeName(prompt)}`);
    }
    const entries = Object.entries(prompt as Record<string, unknown>);
    if (entries.length > MAX_NODES) throw new PromptError("invalid_prompt", `the prompt has ${entries.length} nodes, more than ${MAX_NODES}`);
    for (const [id, raw] of entries) {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new PromptError("invalid_prompt", `node ${JSON.stringify(id)} must be an object with class_type and inputs, got ${typeName(raw)}`);
      const { class_type: classType, inputs } = raw as Record<string, unknown>;
      if (typeof classType !== "string" || classType === "") throw new PromptError("invalid_prompt", `Cannot execute because node ${JSON.stringify(id)} is missing the class_type property`);
      if (inputs !== undefined && (typeof inputs !== "object" || inputs === null || Array.isArray(inputs))) {
        throw new PromptError("invalid_prompt", `the inputs of node ${JSON.stringify(id)} (${classType}) must be an object, got ${typeName(inputs)}`);
      }
      this.nodes.set(id, { id, classType, inputs: { ...(inputs ?? {}) as Record<string, unknown> } });
    }
    this.inlinePrimitives();
  }

  /** Links to a core primitive node's output become its value, as ComfyUI passes it on. */
  private inlinePrimitives(): void {
    for (const node of this.nodes.values()) {
      for (const [input, link] of Object.entries(node.inputs)) {
        let value: unknown = link;
        // a primitive may take its value from another (bounded: a chain cannot be longer than the graph)
        for (let hops = 0; hops < this.nodes.size && Array.isArray(value) && value.length === 2 && value[1] === 0; hops++) {
          const from = this.nodes.get(String(value[0]));
          if (!from || !PRIMITIVE_CLASSES.includes(from.classType)) break;
          value = from.inputs.value;
        }
        node.inputs[input] = value;
      }
    }
  }

  /** The node an input links to and the output index, checked against the classes that may feed it. */
  follow(node: GraphNode, input: string, accepted: Readonly<Record<string, number[]>>, what: string): GraphNode {
    const link = node.inputs[input];
    if (link === undefined) throw new NodeError(node, `Required input is missing: ${input}`, input, "required_input_missing");
    if (!Array.isArray(link) || link.length !== 2 || typeof link[0] !== "string" && typeof link[0] !== "number" || !Number.isInteger(link[1])) {
      throw new NodeError(node, `${input} must link to a node's output (["node id", output index]), got ${JSON.stringify(link)?.slice(0, 100)}`, input, "bad_linked_input");
    }
    const from = this.nodes.get(String(link[0]));
    if (!from) throw new NodeError(node, `${input} links to node ${JSON.stringify(String(link[0]))}, which is not in the prompt`, input, "bad_linked_input");
    const outputs = accepted[from.classType];
    if (!outputs?.includes(link[1] as number)) {
      const takes = Object.entries(accepted).map(([c, o]) => `${c} output ${o.join(" or ")}`).join(", ");
      throw new NodeError(node, `${input} needs ${what} (${takes}), but it links to output ${link[1]} of node ${from.id} (${from.classType})`, input, "return_type_mismatch");
    }
    return from;
  }
}

/** Runs one of the server's checks for a node's input, its error becoming the node's. */
export function forInput<T>(node: GraphNode, input: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof NodeError) throw e;
    throw new NodeError(node, (e as Error).message, input);
  }
}

/** A width or height a node makes (a multiple of 8 within the server's limit), as the node's error otherwise. */
export const nodeSide = (node: GraphNode, input: string, v: number, limits: Limits, what = input): number =>
  forInput(node, input, () => checkSide(what, v, limits));

/**
 * A node's widget values read with the server's field checks (the input name is the field name), a
 * bad value becoming the node's error. A link where a value belongs (a primitive node's output) is
 * named as such, since only values are taken here.
 */
export function nodeFields(node: GraphNode): NodeFields {
  return new NodeFields(node);
}

export class NodeFields {
  private readonly f: Fields;

  constructor(readonly node: GraphNode) {
    this.f = new Fields(node.inputs as never);
  }

  private read<T>(input: string, fn: (f: Fields) => T | undefined, required: boolean): T | undefined {
    const v = this.node.inputs[input];
    if (Array.isArray(v)) throw new NodeError(this.node, `${input} must be a value here, not a link to another node (${JSON.stringify(v).slice(0, 60)})`, input);
    const out = forInput(this.node, input, () => fn(this.f));
    if (out === undefined && required) throw new NodeError(this.node, `Required input is missing: ${input}`, input, "required_input_missing");
    return out;
  }

  string(input: string, maxLength?: number): string {
    return this.read(input, (f) => f.string(input, maxLength), true)!;
  }

  int(input: string, min: number, max: number): number {
    return this.read(input, (f) => f.int(input, min, max), true)!;
  }

  optionalInt(input: string, min: number, max: number): number | undefined {
    return this.read(input, (f) => f.int(input, min, max), false);
  }

  /** A LoRA or ControlNet file as the server's libraries name it: ComfyUI's names carry sub-folders and the extension. */
  libraryName(input: string): string {
    return this.string(input, 300).replace(/^.*[\\/]/, "").replace(/\.safetensors$/i, "");
  }

  number(input: string, min: number, max: number): number {
    return this.read(input, (f) => f.number(input, min, max), true)!;
  }

  optionalNumber(input: string, min: number, max: number): number | undefined {
    return this.read(input, (f) => f.number(input, min, max), false);
  }

  optionalBool(input: string): boolean | undefined {
    return this.read(input, (f) => f.bool(input), false);
  }
}
