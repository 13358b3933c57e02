/** The folders behind --lora-dir, --upscaler-dir, --controlnet-dir and --vae-dir. */
import { realpathSync, statSync } from "node:fs";
import { readdir, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, relative } from "node:path";

/** The folder's real path, or an error naming the flag. */
export function libraryFolder(dir: string, flag: string, makeError: (message: string) => Error): string {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    throw makeError(`${flag} ${dir}: no such folder`);
  }
  if (!statSync(real).isDirectory()) throw makeError(`${flag} ${dir}: not a folder`);
  return real;
}

const SAFETENSORS = /\.safetensors$/i;

/** True when `path` lies inside `root` (both real paths). */
export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
}

export interface LibraryFile {
  /** The file name as found (with its extension). */
  fileName: string;
  /** Its real path, inside the folder. */
  path: string;
  size: number;
  mtimeMs: number;
}

/**
 * The .safetensors files under a library's real folder, sub-folders down to `maxDepth`, by an
 * asynchronous walk; a link is followed only to a file that is still inside the folder.
 */
export async function safetensorsFiles(dir: string, maxDepth: number): Promise<LibraryFile[]> {
  const out: LibraryFile[] = [];
  const visit = async (folder: string, depth: number): Promise<void> => {
    let entries;
    try { entries = await readdir(folder, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const path = join(folder, e.name);
      if (e.isDirectory()) { if (depth < maxDepth) await visit(path, depth + 1); continue; }
      if (!SAFETENSORS.test(e.name) || !(e.isFile() || e.isSymbolicLink())) continue;
      let real: string, s;
      try { real = await realpath(path); s = await stat(real); } catch { continue; }
      if (s.isFile() && isInside(dir, real)) out.push({ fileName: e.name, path: real, size: s.size, mtimeMs: s.mtimeMs });
    }
  };
  await visit(dir, 0);
  return out;
}
