/** The folder behind --lora-dir, --upscaler-dir and --controlnet-dir: its real path, or an error naming the flag. */
import { realpathSync, statSync } from "node:fs";

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
