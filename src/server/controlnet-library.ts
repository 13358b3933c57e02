/**
 * The ControlNets of `--controlnet-dir DIR`, addressable by name as sd-webui-controlnet's model list:
 * each sub-folder holding a config.json (a diffusers ControlNetModel folder) is a net named by the
 * folder, and each NAME.safetensors file with its config beside it (NAME.json or NAME.config.json) is
 * a net named NAME. A name is only looked up in the listing, never joined onto a path, and what it
 * finds must lie inside DIR once links are resolved. ControlNets (the runner side) opens them lazily
 * on first use, checked against the UNet, and keeps a few compiled.
 */
import { libraryFolder } from "./library-folder.js";
import { existsSync, statSync } from "node:fs";
import { readFile, readdir, realpath, stat } from "node:fs/promises";
import { join } from "node:path";
import type { StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import { ControlNetRunner, checkControlNetFits } from "../pipelines/controlnet-runner.js";
import { storeSource } from "../loaders/component.js";
import { TensorStore } from "../safetensors/index.js";
import { invalid } from "./errors.js";
import { isInside } from "./library-folder.js";

export class ControlNetLibraryError extends Error {}

export interface ControlNetEntry {
  name: string;
  /** The real path of the folder or file. */
  path: string;
  /** A lone file's config (JSON file); absent for folders. */
  config?: string;
}

const SAFETENSORS = /\.safetensors$/i;

/** Rejects names that could be read as paths. */
function checkName(name: string): void {
  if (name === "" || name.length > 255 || /[/\\\0]/.test(name) || name.includes("..")) {
    throw new ControlNetLibraryError(`bad ControlNet name ${JSON.stringify(name)}: a net is named by its folder or file name (see GET /controlnet/model_list)`);
  }
}

/** A1111 lists models as "name [hash]": the name without such a suffix. */
export const bareModelName = (model: string): string => model.trim().replace(/\s*\[[0-9a-fA-F]*\]$/, "");

export class ControlNetLibrary {
  readonly dir: string;
  private entries = new Map<string, ControlNetEntry>();
  private listing: Promise<void>;

  constructor(dir: string) {
    this.dir = libraryFolder(dir, "--controlnet-dir", (m) => new ControlNetLibraryError(m));
    this.listing = this.walk();
  }

  /** Lists the folder again (also done when a name is not found). */
  refresh(): Promise<void> {
    this.listing = this.listing.catch(() => {}).then(() => this.walk());
    return this.listing;
  }

  private async walk(): Promise<void> {
    const found = new Map<string, ControlNetEntry>();
    for (const e of await readdir(this.dir, { withFileTypes: true })) {
      const path = join(this.dir, e.name);
      let real: string;
      try {
        real = await realpath(path);
      } catch {
        continue; // a dangling link
      }
      if (!isInside(this.dir, real)) continue; // a link out of the folder is not served
      const s = await stat(real);
      if (s.isDirectory()) {
        if (existsSync(join(real, "config.json"))) found.set(e.name, { name: e.name, path: real });
      } else if (SAFETENSORS.test(e.name)) {
        const name = e.name.replace(SAFETENSORS, "");
        const config = [`${name}.json`, `${name}.config.json`].map((c) => join(this.dir, c)).find((c) => existsSync(c));
        const realConfig = config && await realpath(config).catch(() => undefined);
        if (realConfig && isInside(this.dir, realConfig) && !found.has(name)) found.set(name, { name, path: real, config: realConfig });
      }
    }
    this.entries = found;
  }

  async names(): Promise<string[]> {
    await this.listing;
    return [...this.entries.keys()].sort();
  }

  /** The entry of `name` ("name [hash]" too); unknown after a fresh listing: ControlNetLibraryError. */
  async resolve(model: string): Promise<ControlNetEntry> {
    const name = bareModelName(model);
    checkName(name);
    await this.listing;
    if (!this.entries.has(name)) await this.refresh();
    const entry = this.entries.get(name);
    if (!entry) {
      const names = await this.names();
      throw new ControlNetLibraryError(`unknown ControlNet model ${JSON.stringify(model)} in ${this.dir} (${names.length ? `available: ${names.slice(0, 30).join(", ")}` : "the folder holds no ControlNet"})`);
    }
    return entry;
  }
}

/** Nets kept compiled between jobs by default (each holds its own weights and sessions). */
export const DEFAULT_CONTROLNET_CACHE = 2;

/**
 * The nets opened for one pipeline (the runner side: in-process queue or worker), most recently used
 * last; one evicted is released. A net is checked against the pipeline's UNet when opened: a mismatch
 * is a 400 naming the field.
 */
export class ControlNets {
  private readonly open = new Map<string, ControlNetRunner>();

  constructor(readonly library: ControlNetLibrary | undefined, private readonly pipe: StableDiffusionXLPipeline, private readonly keep = DEFAULT_CONTROLNET_CACHE, private readonly runner = "server") {}

  async get(model: string): Promise<ControlNetRunner> {
    if (!this.library) throw invalid(`this ${this.runner} has no --controlnet-dir, so it cannot run the ControlNet ${JSON.stringify(model)}`, "no_controlnet_dir", "controlnets");
    let entry: ControlNetEntry;
    try {
      entry = await this.library.resolve(model);
    } catch (e) {
      if (e instanceof ControlNetLibraryError) throw invalid(e.message, "unknown_controlnet", "controlnets");
      throw e;
    }
    const s = statSync(entry.path);
    // a net saved again under the same name is opened again
    const key = `${entry.path}\0${s.mtimeMs}\0${entry.config ?? ""}`;
    let net = this.open.get(key);
    if (net) {
      this.open.delete(key);
    } else {
      while (this.open.size >= Math.max(1, this.keep)) {
        const [k, old] = this.open.entries().next().value as [string, ControlNetRunner];
        this.open.delete(k);
        await old.release();
      }
      net = await this.load(entry);
    }
    this.open.set(key, net);
    return net;
  }

  private async load(entry: ControlNetEntry): Promise<ControlNetRunner> {
    try {
      if (!entry.config) return await this.pipe.loadControlNet(entry.path);
      const config = JSON.parse(await readFile(entry.config, "utf8"));
      const net = ControlNetRunner.fromWeights({ config, source: storeSource(TensorStore.open(entry.path)), where: entry.path }, this.pipe.components.settings.session ?? {});
      checkControlNetFits(net.config, this.pipe.unet.config, this.pipe.vae.config.latentChannels);
      return net;
    } catch (e) {
      throw invalid(`ControlNet ${JSON.stringify(entry.name)}: ${(e as Error).message}`, "invalid_controlnet", "controlnets");
    }
  }

  /** Releases every opened net; keep = 0 afterwards would not matter: jobs run one at a time. */
  async release(): Promise<void> {
    for (const net of this.open.values()) await net.release();
    this.open.clear();
  }
}
