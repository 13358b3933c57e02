/**
 * Building a distillation student from its teacher (the SSD-1B recipe: SDXL with transformer blocks
 * removed): every student parameter is copied from the teacher parameter of the same name, with the
 * transformer blocks of each attention mapped by index (student block i ← teacher block i, so a
 * shallower student keeps the first blocks). A student deeper than its teacher at some attention
 * starts those extra blocks as copies of the teacher's last one. Anything else the student has that
 * the teacher lacks, or has in another shape, means it is not a sub-architecture: refused, named.
 */
import { readFileSync, existsSync } from "node:fs";
import { SSD1B_UNET, VEGA_UNET } from "../../loaders/builtin-configs/unet.js";
import { expectedParameters } from "../../models/components.js";
import type { WeightSource } from "../../nn/weights.js";
import { parseUNetConfig } from "../../models/unet/index.js";

export class StudentError extends Error {}

/** `ssd-1b`, `vega` (built-in configs) or a UNet config.json file. */
export function resolveStudentConfig(spec: string): Record<string, any> {
  if (spec === "ssd-1b") return { ...SSD1B_UNET };
  if (spec === "vega") return { ...VEGA_UNET };
  if (!existsSync(spec)) throw new StudentError(`--student ${spec}: not "ssd-1b", "vega" or an existing UNet config.json`);
  try {
    const raw = JSON.parse(readFileSync(spec, "utf8"));
    parseUNetConfig(raw);
    return raw;
  } catch (e) {
    throw new StudentError(`--student ${spec}: not a usable UNet config (${(e as Error).message})`);
  }
}

export interface StudentPlan {
  /** student key → teacher key it starts from. */
  mapping: Map<string, string>;
  /** Teacher modules the student drops (coarsest names: a whole attention when all of it goes). */
  dropped: string[];
  /** Student transformer blocks initialised from another teacher block ("student ← teacher"). */
  duplicated: string[];
}

const BLOCK = /^(.*\.transformer_blocks\.)(\d+)(\..*)$/;

export function planStudent(teacherConfig: Record<string, any>, studentConfig: Record<string, any>): StudentPlan {
  const teacher = expectedParameters("unet", teacherConfig);
  const student = expectedParameters("unet", studentConfig);
  // deepest block index per teacher attention
  const depth = new Map<string, number>();
  for (const k of teacher.keys()) {
    const m = BLOCK.exec(k);
    if (m) depth.set(m[1], Math.max(depth.get(m[1]) ?? -1, Number(m[2])));
  }
  const mapping = new Map<string, string>();
  const problems: string[] = [];
  const duplicated = new Set<string>();
  for (const [sk, shape] of student) {
    let tk = sk;
    const m = BLOCK.exec(sk);
    if (m && depth.has(m[1]) && Number(m[2]) > depth.get(m[1])!) {
      tk = `${m[1]}${depth.get(m[1])}${m[3]}`;
      duplicated.add(`${m[1]}${m[2]} ← ${m[1]}${depth.get(m[1])}`);
    }
    const ts = teacher.get(tk);
    if (!ts) problems.push(`${sk} (the teacher has no ${tk})`);
    else if (ts.join() !== shape.join()) problems.push(`${sk} [${shape}] vs the teacher's [${ts}]`);
    else mapping.set(sk, tk);
  }
  if (problems.length) {
    throw new StudentError(`the student is not a sub-architecture of the teacher: ${problems.length} student parameter(s) have no teacher counterpart:\n  ${problems.slice(0, 10).join("\n  ")}${problems.length > 10 ? `\n  … and ${problems.length - 10} more` : ""}`);
  }
  const used = new Set(mapping.values());
  const dropped = new Set<string>();
  for (const tk of teacher.keys()) {
    if (used.has(tk)) continue;
    // the coarsest module prefix of which the student keeps nothing
    const parts = tk.split(".");
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join(".");
      if (i < parts.length && !/^\d+$/.test(parts[i - 1]) && parts[i - 1] !== "mid_block") continue;
      if (![...used].some((u) => u === prefix || u.startsWith(prefix + "."))) { dropped.add(prefix); break; }
    }
  }
  return { mapping, dropped: [...dropped].sort(), duplicated: [...duplicated].sort() };
}

/** The student's weights, read from the teacher's files through the mapping. */
export function studentSource(teacher: WeightSource, plan: StudentPlan): WeightSource {
  return {
    description: `student of ${teacher.description}`,
    lookup: (key, shape) => {
      const tk = plan.mapping.get(key);
      return tk === undefined ? undefined : teacher.lookup(tk, shape);
    },
    keys: () => plan.mapping.keys(),
  };
}
