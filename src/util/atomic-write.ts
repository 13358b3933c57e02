/**
 * Output files written under a temporary name in the same folder and renamed over the final name
 * once complete: a run that fails or is killed midway (a synth of a huge config, an out-of-memory
 * kill, Ctrl-C) leaves no truncated file that looks finished, and an existing file stays whole
 * until its replacement is.
 */
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

/** A hidden temporary name next to `file` (same folder: the rename stays on one file system). */
export function partialName(file: string): string {
  return join(dirname(file), `.${basename(file)}.${process.pid}-${randomBytes(3).toString("hex")}.partial`);
}

/** Calls `write(tmp)`, then renames tmp to `file`; on an error removes tmp and rethrows. */
export function writeAtomically<T>(file: string, write: (tmp: string) => T): T {
  const tmp = partialName(file);
  try {
    const result = write(tmp);
    renameSync(tmp, file);
    return result;
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function writeFileAtomically(file: string, data: string | NodeJS.ArrayBufferView): void {
  writeAtomically(file, (tmp) => writeFileSync(tmp, data));
}
