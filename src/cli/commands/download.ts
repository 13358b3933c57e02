import { parseArgs } from "node:util";
import { HubError, parseRepoSpec, snapshotDownload, formatBytes, type RepoKind } from "../../hub/index.js";
import { HUB_HELP, HUB_OPTIONS, hubOptionsFrom } from "../hub-flags.js";
import { UsageError } from "../usage-error.js";

export const downloadUsage = `ssd1b download REPO_ID [--variant fp16|fp32] [--revision REV] [--include GLOB ...]
  Fetches a model from the Hugging Face Hub into its standard cache (HF_HUB_CACHE, else $HF_HOME/hub, else
  ~/.cache/huggingface/hub; the layout huggingface_hub uses, so Python finds it too) and prints the
  snapshot folder as the last line. Only what the pipeline loads: model_index.json, each component's
  configs, tokenizers, scheduler and the variant's safetensors weights (not the other variant, not .bin
  files, not the single-file checkpoints at the repo root). Resumes interrupted files, checks each file's
  checksum, and reuses a complete cached snapshot without any network call.
  REPO_ID                 a diffusers pipeline (segmind/SSD-1B), a component repo (a VAE, a TAESD), or
                          REPO_ID/FILE.safetensors for one file (a single-file checkpoint, a LoRA)
  --variant fp16|fp32     weights to fetch (default fp16 where the repo has it, else fp32)
  --revision REV          branch, tag or commit (default main; also REPO_ID@REV)
  --include GLOB          more files (repeatable; * matches across folders, as huggingface-cli)
  --lora REPO_ID[/FILE]   a LoRA repo: its pytorch_lora_weights.safetensors (or its only .safetensors)
  --vae REPO_ID           a diffusers AutoencoderKL repo (e.g. madebyollin/sdxl-vae-fp16-fix)
  --taesd REPO_ID         a TAESD repo (e.g. madebyollin/taesdxl)
${HUB_HELP}`;

export async function downloadCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      ...HUB_OPTIONS, variant: { type: "string" }, revision: { type: "string" }, include: { type: "string", multiple: true },
      lora: { type: "string" }, vae: { type: "string" }, taesd: { type: "string" },
    },
  });
  const given = [
    ...positionals.map((p) => ({ spec: p, kind: undefined as RepoKind | undefined, flag: "" })),
    ...(values.lora ? [{ spec: values.lora, kind: "lora" as const, flag: "--lora " }] : []),
    ...(values.vae ? [{ spec: values.vae, kind: "component" as const, flag: "--vae " }] : []),
    ...(values.taesd ? [{ spec: values.taesd, kind: "component" as const, flag: "--taesd " }] : []),
  ];
  if (given.length !== 1) throw new UsageError(given.length ? "one repo at a time (REPO_ID, --lora, --vae or --taesd)" : "which repo? e.g. ssd1b download segmind/SSD-1B");
  const { spec, flag } = given[0];
  const repo = parseRepoSpec(spec);
  if (!repo) throw new UsageError(`${flag}${spec}: not a Hugging Face repo id (owner/name, owner/name/FILE or owner/name@REV)`);
  const variant = values.variant;
  if (variant !== undefined && variant !== "fp16" && variant !== "fp32") throw new UsageError(`--variant must be fp16 or fp32, got "${variant}"`);
  if (values.revision && spec.includes("@")) throw new UsageError(`give the revision once: ${spec} or --revision ${values.revision}`);
  const kind = repo.file ? (given[0].kind === "lora" ? "lora" : "file") : given[0].kind;
  const t0 = performance.now();
  try {
    const r = await snapshotDownload(
      { repoId: repo.repoId, revision: values.revision ?? repo.revision, file: repo.file, kind, variant, include: values.include },
      hubOptionsFrom(values),
    );
    for (const n of r.notes) process.stderr.write(`note: ${n}\n`);
    const secs = (performance.now() - t0) / 1000;
    process.stderr.write(r.fromCache
      ? `${repo.repoId}: complete in the cache (commit ${r.commit}), nothing fetched\n`
      : `${repo.repoId}: ${r.fetched.length} file(s), ${formatBytes(r.bytes)} in ${secs.toFixed(1)} s (commit ${r.commit}${r.variant ? `, ${r.variant} weights` : ""})\n`);
    process.stdout.write(`${r.path}\n`);
  } catch (e) {
    if (e instanceof HubError) throw new Error(e.message);
    throw e;
  }
}
