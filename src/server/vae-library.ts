/**
 * The VAE files of `--vae-dir DIR` (A1111's models/VAE, ComfyUI's models/vae): every .safetensors
 * VAE under it (sub-folders too; loaders/vae-file.ts reads LDM and diffusers names), named by file
 * name as A1111's sd_vae and ComfyUI's vae_name list them ("sdxl_vae.safetensors"; the name without
 * the extension is found too). As with --lora-dir, a name is only looked up in the listing and a file
 * must still lie inside DIR once links are resolved; files that are no VAE are left out.
 */
import { libraryFolder, safetensorsFiles } from "./library-folder.js";
import { openVaeFile } from "../loaders/vae-file.js";

export class VaeLibraryError extends Error {}

export interface VaeEntry {
  /** The file name, with its extension. */
  name: string;
  /** The real path of the file. */
  path: string;
}

const MAX_DEPTH = 4;

export class VaeLibrary {
  readonly dir: string;
  private headers = new Map<string, { size: number; mtimeMs: number; vae: boolean }>();

  constructor(dir: string) {
    this.dir = libraryFolder(dir, "--vae-dir", (m) => new VaeLibraryError(m));
  }

  /** The folder's VAE files by name (a walk per call: folders are small; headers read once per file version). */
  async list(): Promise<VaeEntry[]> {
    const out: VaeEntry[] = [];
    for (const f of await safetensorsFiles(this.dir, MAX_DEPTH)) {
      let h = this.headers.get(f.path);
      if (!h || h.size !== f.size || h.mtimeMs !== f.mtimeMs) {
        let vae = true;
        try { openVaeFile(f.path); } catch { vae = false; }
        h = { size: f.size, mtimeMs: f.mtimeMs, vae };
        this.headers.set(f.path, h);
      }
      if (h.vae) out.push({ name: f.fileName, path: f.path });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The VAE called `name` (with or without .safetensors); VaeLibraryError naming the choices otherwise. */
  async get(name: string): Promise<VaeEntry> {
    const all = await this.list();
    const found = all.filter((e) => e.name === name || e.name.replace(/\.safetensors$/i, "") === name);
    if (found.length === 1) return found[0];
    if (found.length > 1) throw new VaeLibraryError(`the VAE name ${JSON.stringify(name)} is ambiguous (${found.length} files in ${this.dir}; rename one)`);
    throw new VaeLibraryError(`unknown VAE ${JSON.stringify(name)} (available: ${all.length ? all.map((e) => e.name).join(", ") : `none in ${this.dir}`})`);
  }
}
