/**
 * What a user types to name something on the Hugging Face Hub: `owner/name`, optionally a file in it
 * (`owner/name/sub/file.safetensors`) and a revision (`owner/name@v1.0`, `owner/name/file.safetensors@abc123`).
 * A spec that exists on disk is always a local path, never a repo id (callers check that first).
 */
export interface RepoSpec {
  repoId: string;
  /** Branch, tag or commit; "main" unless given. */
  revision: string;
  /** A path inside the repo, when the spec names one file. */
  file?: string;
}

const PART = /^[A-Za-z0-9][\w.-]*$/;

export function parseRepoSpec(spec: string): RepoSpec | undefined {
  if (!spec || /^[./~\\]/.test(spec) || spec.includes("\\") || spec.includes("//")) return undefined;
  const at = spec.lastIndexOf("@");
  const path = at >= 0 ? spec.slice(0, at) : spec;
  const revision = at >= 0 ? spec.slice(at + 1) : "main";
  if (!revision || /\s/.test(revision) || revision.includes("..")) return undefined;
  const parts = path.split("/");
  if (parts.length < 2 || !PART.test(parts[0]) || !/^[\w.-]+$/.test(parts[1]) || parts[1].startsWith(".")) return undefined;
  const rest = parts.slice(2);
  if (rest.some((p) => !p || p === "." || p === "..")) return undefined;
  return { repoId: `${parts[0]}/${parts[1]}`, revision, ...(rest.length ? { file: rest.join("/") } : {}) };
}

export function formatRepoSpec(s: RepoSpec): string {
  return `${s.repoId}${s.file ? `/${s.file}` : ""}${s.revision !== "main" ? `@${s.revision}` : ""}`;
}
