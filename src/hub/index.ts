export { snapshotDownload, type DownloadRequest, type DownloadResult } from "./snapshot-download.js";
export { ensureLocal, type SpecRole } from "./ensure-local.js";
export { hubSettings, type HubOptions, type HubSettings } from "./settings.js";
export { HubError } from "./hub-api.js";
export { parseRepoSpec, type RepoSpec } from "./repo-spec.js";
export { progressPrinter, formatBytes, type DownloadProgress } from "./progress.js";
export { selectFiles, type RepoKind, type WeightVariant } from "./select-files.js";
