/**
 * huggingface_hub's cache layout, so that what either side downloads the other finds offline:
 *
 *   <cache>/models--owner--name/blobs/<etag>                 one file per content (LFS: its sha256)
 *   <cache>/models--owner--name/snapshots/<commit>/<path>    relative symlinks into blobs/
 *   <cache>/models--owner--name/refs/<revision>              the commit a branch or tag pointed to
 *   <cache>/.locks/models--owner--name/                      lock files of downloads in progress
 */
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { randomBytes } from "node:crypto";
import { writeFileAtomically } from "../util/atomic-write.js";
import { repoFolderName } from "../loaders/model-folder.js";

export const COMMIT = /^[0-9a-f]{40}$/;

export { repoFolderName };

export class RepoCache {
  readonly dir: string;
  constructor(readonly cacheDir: string, readonly repoId: string) {
    this.dir = join(cacheDir, repoFolderName(repoId));
  }

  blob(etag: string): string { return join(this.dir, "blobs", etag); }
  snapshot(commit: string): string { return join(this.dir, "snapshots", commit); }
  lock(etag: string): string { return join(this.cacheDir, ".locks", repoFolderName(this.repoId), `${etag}.ssd1b-lock`); }

  /** The commit `revision` names in the cache: itself when it is a commit hash, else refs/<revision>. */
  commitOf(revision: string): string | undefined {
    if (COMMIT.test(revision)) return existsSync(this.snapshot(revision)) ? revision : undefined;
    const ref = join(this.dir, "refs", revision);
    return existsSync(ref) ? readFileSync(ref, "utf8").trim() || undefined : undefined;
  }

  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const ref = join(this.dir, "refs", revision);
    mkdirSync(dirname(ref), { recursive: true });
    writeFileAtomically(ref, commit);
  }

  /** snapshots/<commit>/<path> → ../../blobs/<etag> (relative, as huggingface_hub makes them), replaced atomically. */
  linkIntoSnapshot(commit: string, path: string, etag: string): string {
    const link = join(this.snapshot(commit), path);
    mkdirSync(dirname(link), { recursive: true });
    const tmp = `${link}.${randomBytes(4).toString("hex")}.tmp`;
    symlinkSync(relative(dirname(link), this.blob(etag)), tmp);
    renameSync(tmp, link);
    return link;
  }
}
