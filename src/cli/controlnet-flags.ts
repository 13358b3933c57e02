/**
 * The ControlNet flags of every sampling command: `--controlnet NET` starts a group; the
 * `--control-image`, `--control-scale`, `--control-start`, `--control-end` and `--canny LOW,HIGH`
 * after it (before the next `--controlnet`) belong to it. Checked before any model loads; the nets are
 * opened once the pipeline is (they must fit its UNet).
 */
import { existsSync } from "node:fs";
import { readImageFile } from "../image/image.js";
import type { RgbImage } from "../image/png.js";
import { canny } from "../image/canny.js";
import type { ControlNetUnit } from "../pipelines/sdxl/controlnet.js";
import type { StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import { parseRepoSpec } from "../hub/index.js";
import { UsageError } from "./usage-error.js";

export const CONTROLNET_OPTIONS = {
  controlnet: { type: "string", multiple: true },
  "control-image": { type: "string", multiple: true },
  "control-scale": { type: "string", multiple: true },
  "control-start": { type: "string", multiple: true },
  "control-end": { type: "string", multiple: true },
  canny: { type: "string", multiple: true },
  "guess-mode": { type: "boolean" },
} as const;

export const CONTROLNET_HELP = `  --controlnet NET     a diffusers ControlNetModel folder or Hub repo id (e.g. diffusers/controlnet-canny-sdxl-1.0);
                       repeat for several (residuals summed); the flags below apply to the --controlnet before them
  --control-image F    its control image (edges, depth, pose...), resized to the output size
  --control-scale S    its conditioning scale (default 1)
  --control-start A, --control-end B  the fraction of the steps in which it acts (default 0 and 1)
  --canny LOW,HIGH     make its control image from --control-image with Canny edges (OpenCV's thresholds)
  --guess-mode         ControlNet guess mode: the nets see only the conditional half`;

interface Group { net: string; image?: string; scale?: number; start?: number; end?: number; canny?: [number, number] }

export interface ParsedControlNets { groups: Group[]; guessMode: boolean }

type Token = { kind: string; name?: string; value?: string | undefined };

const num = (flag: string, raw: string | undefined) => {
  const v = Number(raw);
  if (raw === undefined || raw.trim() === "" || !Number.isFinite(v)) throw new UsageError(`--${flag} must be a number, got "${raw}"`);
  return v;
};

/** The groups in command-line order, from parseArgs' tokens. */
export function parseControlNets(tokens: readonly Token[], values: Record<string, unknown>): ParsedControlNets {
  const groups: Group[] = [];
  for (const t of tokens) {
    if (t.kind !== "option" || !t.name || !(t.name in CONTROLNET_OPTIONS) || t.name === "guess-mode") continue;
    if (t.name === "controlnet") {
      if (!existsSync(t.value!) && !parseRepoSpec(t.value!)) throw new UsageError(`--controlnet ${t.value}: no such folder or file, and not a Hub repo id`);
      groups.push({ net: t.value! });
      continue;
    }
    const g = groups[groups.length - 1];
    if (!g) throw new UsageError(`--${t.name} must follow the --controlnet it applies to`);
    if (t.name === "control-image") {
      if (g.image) throw new UsageError(`--controlnet ${g.net} has two --control-image; give one per --controlnet`);
      if (!existsSync(t.value!)) throw new UsageError(`--control-image ${t.value}: file not found`);
      g.image = t.value;
    } else if (t.name === "control-scale") g.scale = num(t.name, t.value);
    else if (t.name === "control-start") g.start = num(t.name, t.value);
    else if (t.name === "control-end") g.end = num(t.name, t.value);
    else if (t.name === "canny") {
      const parts = (t.value ?? "").split(",").map((v) => Number(v.trim()));
      if (parts.length !== 2 || !parts.every((v) => Number.isFinite(v) && v >= 0)) throw new UsageError(`--canny takes LOW,HIGH thresholds, got "${t.value}"`);
      g.canny = [parts[0], parts[1]];
    }
  }
  for (const g of groups) {
    if (!g.image) throw new UsageError(`--controlnet ${g.net} needs a --control-image after it`);
    const start = g.start ?? 0, end = g.end ?? 1;
    if (!(start >= 0 && start < end && end <= 1)) throw new UsageError(`--controlnet ${g.net}: --control-start/--control-end must satisfy 0 <= start < end <= 1, got ${start}, ${end}`);
  }
  const guessMode = values["guess-mode"] === true;
  if (guessMode && groups.length === 0) throw new UsageError("--guess-mode needs a --controlnet");
  return { groups, guessMode };
}

/** The control image of a group: the file, or its Canny edges. */
export function controlImage(g: Group): RgbImage {
  const img = readImageFile(g.image!);
  return g.canny ? canny(img, g.canny[0], g.canny[1]) : img;
}

/** Opens the nets on the loaded pipeline (checked against its UNet) as the call's units. */
export async function openControlNets(pipe: StableDiffusionXLPipeline, parsed: ParsedControlNets, variant?: "fp16" | "fp32"): Promise<{ units: ControlNetUnit[]; release: () => Promise<void> }> {
  const units: ControlNetUnit[] = [];
  try {
    for (const g of parsed.groups) {
      units.push({ controlnet: await pipe.loadControlNet(g.net, { variant }), image: controlImage(g), scale: g.scale, start: g.start, end: g.end });
    }
  } catch (e) {
    for (const u of units) await u.controlnet.release();
    throw e;
  }
  return { units, release: async () => { for (const u of units) await u.controlnet.release(); } };
}
