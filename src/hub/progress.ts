/**
 * Download progress: the library reports every chunk through a callback; the CLI draws it on stderr,
 * one line redrawn in place on a terminal (total bytes, rate, ETA, and the files in flight), plain
 * log lines otherwise (each file started and finished, and every 10 % of the total).
 */
export interface DownloadProgress {
  repoId: string;
  file: string;
  fileBytes: number;
  fileTotal: number;
  /** Over every file of this download that is not already in the cache. */
  bytes: number;
  total: number;
  filesDone: number;
  files: number;
  /** "start" and "done" once per file, "data" per chunk. */
  event: "start" | "data" | "done";
}

export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i === 0 ? 0 : n < 10 ? 2 : 1)} ${units[i]}`;
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const m = Math.floor(s / 60), h = Math.floor(m / 60);
  return h ? `${h}h${String(m % 60).padStart(2, "0")}m` : m ? `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s` : `${Math.round(s)}s`;
}

export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): (p: DownloadProgress) => void {
  const started = performance.now();
  let lastDraw = 0, lastTenth = -1, firstBytes: number | undefined;
  const inFlight = new Map<string, { bytes: number; total: number }>();
  return (p) => {
    firstBytes ??= p.bytes; // bytes already on disk from an earlier run do not count toward the rate
    const secs = (performance.now() - started) / 1000;
    const rate = (p.bytes - firstBytes) / Math.max(secs, 1e-3);
    const eta = rate > 0 ? (p.total - p.bytes) / rate : Infinity;
    const pct = p.total ? Math.floor((100 * p.bytes) / p.total) : 100;
    const head = `${p.repoId}: ${formatBytes(p.bytes)} / ${formatBytes(p.total)} ${pct}% ${formatBytes(rate)}/s ETA ${formatSeconds(eta)} (${p.filesDone}/${p.files} files)`;
    if (p.event === "done") inFlight.delete(p.file);
    else inFlight.set(p.file, { bytes: p.fileBytes, total: p.fileTotal });
    if (stream.isTTY) {
      const now = performance.now();
      if (p.event === "data" && now - lastDraw < 100) return;
      lastDraw = now;
      const files = [...inFlight].slice(0, 2).map(([f, b]) => `${f.slice(f.lastIndexOf("/") + 1)} ${b.total ? Math.floor((100 * b.bytes) / b.total) : 100}%`).join(", ");
      const line = `${head}${files ? ` [${files}]` : ""}`;
      const cols = stream.columns ?? 120;
      stream.write(`\r\x1b[K${line.length > cols - 1 ? line.slice(0, cols - 2) + "…" : line}${p.filesDone === p.files && p.event === "done" ? "\n" : ""}`);
      return;
    }
    const tenth = p.total ? Math.floor((10 * p.bytes) / p.total) : 10;
    if (p.event === "start") stream.write(`downloading ${p.file} (${formatBytes(p.fileTotal)})\n`);
    else if (p.event === "done") stream.write(`done ${p.file}; ${head}\n`);
    else if (tenth > lastTenth && tenth < 10) stream.write(`${head}\n`);
    if (tenth > lastTenth) lastTenth = tenth;
  };
}
