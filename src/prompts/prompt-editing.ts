/**
 * AUTOMATIC1111's prompt editing (modules/prompt_parser.py, get_learned_conditioning_prompt_schedules):
 *   [from:to:when]  `from` until step `when`, then `to`;  [to:when] added after `when`;  [from::when] removed;
 *   [a|b|c]         alternation: a different one each step.
 * `when` below 1 with a "." is a fraction of the steps (int(when·steps)), else a step number; an
 * alternation lists every step. A prompt is a schedule of texts, each with the last step it holds for.
 * The grammar is A1111's Lark grammar, read here by recursive descent:
 *   start: (prompt | /[][():]/+)*        prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
 *   emphasized: "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"
 *   scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
 *   alternate: "[" prompt ("|" [prompt])+ "]"          plain: /([^\\\[\]():|]|\\.)+/
 * A prompt the grammar does not take (a "|" outside brackets, a lone trailing "\", brackets over
 * MAX_PROMPT_NESTING deep) is one entry, the text as is, as A1111 falls back on a parse error. Emphasis is left in the texts, for parsePromptAttention.
 */

/** A text and the last step (A1111's end_at_step) it is the prompt for. */
export interface ScheduledText { endAt: number; text: string }

/** A1111's hires pass: schedules count from the first pass (integers from its step count, fractions from 1). */
export interface HiresSchedule { baseSteps: number }

type Node =
  | { kind: "text"; text: string }
  | { kind: "scheduled"; before?: Node[]; after: Node[]; when: string }
  | { kind: "alternate"; options: (Node[] | undefined)[] };

const NUMBER = /[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;
const PLAIN = /(?:[^\\[\]():|]|\\.)+/ys;
const STRAY = /[[\]():]+/y;
const SPACES = /\s*/y;

/**
 * Bracket nesting read at most (a prompt of 20,000 "[" would otherwise recurse 20,000 deep): deeper, the
 * prompt is taken as it is, as A1111 takes a prompt its grammar fails on (brackets that deep are
 * unbalanced text or emphasis in practice, which A1111 leaves as they are too).
 */
export const MAX_PROMPT_NESTING = 100;

class TooDeep extends Error {}

type Span = { nodes: Node[]; end: number };

class Parser {
  // prompt() and the bracket readers depend on the position alone: memoized, each position is read once
  private readonly prompts = new Map<number, Span>();
  private readonly brackets = new Map<number, Span | undefined>();
  private depth = 0;
  constructor(private readonly s: string) {}

  private match(re: RegExp, at: number): string | undefined {
    re.lastIndex = at;
    return re.exec(this.s)?.[0];
  }

  /** start: the whole text, or undefined where the grammar fails (or nests too deep). */
  start(): Node[] | undefined {
    try {
      return this.text();
    } catch (e) {
      if (e instanceof TooDeep) return undefined;
      throw e;
    }
  }

  private text(): Node[] | undefined {
    const out: Node[] = [];
    let at = 0;
    while (at < this.s.length) {
      const p = this.prompt(at);
      out.push(...p.nodes);
      at = p.end;
      if (at >= this.s.length) break;
      const stray = this.match(STRAY, at);
      if (!stray) return undefined;
      out.push({ kind: "text", text: stray });
      at += stray.length;
    }
    return out;
  }

  /** prompt: as much as it takes from `at` (possibly nothing). */
  private prompt(at: number): Span {
    const known = this.prompts.get(at);
    if (known) return known;
    if (++this.depth > MAX_PROMPT_NESTING) throw new TooDeep();
    const start = at, nodes: Node[] = [];
    for (;;) {
      const plain = this.match(PLAIN, at);
      if (plain) { nodes.push({ kind: "text", text: plain }); at += plain.length; continue; }
      const bracket = this.bracket(at);
      if (!bracket) break;
      nodes.push(...bracket.nodes);
      at = bracket.end;
    }
    this.depth--;
    const span = { nodes, end: at };
    this.prompts.set(start, span);
    return span;
  }

  private bracket(at: number): Span | undefined {
    if (this.brackets.has(at)) return this.brackets.get(at);
    const c = this.s[at];
    const span = c === "[" ? this.square(at) : c === "(" ? this.round(at) : undefined;
    this.brackets.set(at, span);
    return span;
  }

  /** "(" prompt ")" | "(" prompt ":" prompt ")": kept as text (emphasis), its inside parsed. */
  private round(at: number): Span | undefined {
    const a = this.prompt(at + 1);
    if (this.s[a.end] === ")") return { nodes: [txt("("), ...a.nodes, txt(")")], end: a.end + 1 };
    if (this.s[a.end] !== ":") return undefined;
    const b = this.prompt(a.end + 1);
    if (this.s[b.end] !== ")") return undefined;
    return { nodes: [txt("("), ...a.nodes, txt(":"), ...b.nodes, txt(")")], end: b.end + 1 };
  }

  /** "[": scheduled (with or without `from`), then alternate, then emphasized. */
  private square(at: number): Span | undefined {
    const a = this.prompt(at + 1);
    if (this.s[a.end] === ":") {
      // [to:when]
      const when = this.when(a.end + 1);
      if (when) return { nodes: [{ kind: "scheduled", after: a.nodes, when: when.value }], end: when.end };
      // [from:to:when]
      const b = this.prompt(a.end + 1);
      if (this.s[b.end] === ":") {
        const w = this.when(b.end + 1);
        if (w) return { nodes: [{ kind: "scheduled", before: a.nodes, after: b.nodes, when: w.value }], end: w.end };
      }
      return undefined;
    }
    if (this.s[a.end] === "|") {
      const options: (Node[] | undefined)[] = [a.nodes.length ? a.nodes : undefined];
      let end = a.end;
      while (this.s[end] === "|") {
        const o = this.prompt(end + 1);
        options.push(o.nodes.length ? o.nodes : undefined);
        end = o.end;
      }
      return this.s[end] === "]" ? { nodes: [{ kind: "alternate", options }], end: end + 1 } : undefined;
    }
    if (this.s[a.end] === "]") return { nodes: [txt("["), ...a.nodes, txt("]")], end: a.end + 1 };
    return undefined;
  }

  /** [WHITESPACE] NUMBER [WHITESPACE] "]" from `at`. */
  private when(at: number): { value: string; end: number } | undefined {
    at += this.match(SPACES, at)!.length;
    const n = this.match(NUMBER, at);
    if (!n) return undefined;
    at += n.length;
    at += this.match(SPACES, at)!.length;
    return this.s[at] === "]" ? { value: n, end: at + 1 } : undefined;
  }
}

const txt = (text: string): Node => ({ kind: "text", text });

/**
 * The schedule of `prompt` over `steps` steps (A1111's new scheduling), entries in step order, the last
 * ending at `steps`. `hires`: the prompt of a hires fix's second pass of `steps` steps.
 */
export function promptSchedule(prompt: string, steps: number, hires?: HiresSchedule): ScheduledText[] {
  const tree = new Parser(prompt).start();
  if (!tree) return [{ endAt: steps, text: prompt }];
  const [intOffset, fltOffset] = hires ? [hires.baseSteps, 1] : [0, 0];
  const whenOf = (s: string) => {
    const v = Number(s);
    return Math.min(steps, Math.trunc(s.includes(".") ? (v - fltOffset) * steps : v - intOffset));
  };
  const ends = new Set<number>([steps]);
  const collect = (nodes: readonly Node[]) => {
    for (const n of nodes) {
      if (n.kind === "scheduled") {
        const w = whenOf(n.when);
        if (w >= 1) ends.add(w);
        if (n.before) collect(n.before);
        collect(n.after);
      } else if (n.kind === "alternate") {
        for (let t = 1; t <= steps; t++) ends.add(t);
        for (const o of n.options) if (o) collect(o);
      }
    }
  };
  collect(tree);
  const at = (nodes: readonly Node[], step: number): string => nodes.map((n) => {
    if (n.kind === "text") return n.text;
    if (n.kind === "scheduled") return step <= whenOf(n.when) ? (n.before ? at(n.before, step) : "") : at(n.after, step);
    const o = n.options[(step - 1) % n.options.length];
    return o ? at(o, step) : "";
  }).join("");
  return [...ends].sort((a, b) => a - b).map((endAt) => ({ endAt, text: at(tree, endAt) }));
}

/** The entry A1111's reconstruct_cond_batch picks at model call `call` (0-based): the first ending at or after it. */
export function scheduledAt<T extends { endAt: number }>(schedule: readonly T[], call: number): T {
  return schedule.find((e) => call <= e.endAt) ?? schedule[0];
}
