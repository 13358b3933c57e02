/**
 * The long fuzz run (opt-in): the fuzz tests with FUZZ_SCALE times more cases and a fresh seed.
 *   npx tsc -p . && node dist/bench/fuzz.js [scale=20] [seed=random]
 * A failure prints its seed; rerun with FUZZ_SEED=<seed> to reproduce it.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const scale = process.argv[2] ?? "20";
const seed = process.argv[3] ?? String(Math.floor(Math.random() * 2 ** 31));
const tests = join(dirname(fileURLToPath(import.meta.url)), "..", "test");
const files = ["safetensors-fuzz", "image-bombs", "prompt-fuzz"].map((f) => join(tests, `${f}.test.js`));
console.log(`fuzz: FUZZ_SCALE=${scale} FUZZ_SEED=${seed}`);
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=1", ...files], { stdio: "inherit", env: { ...process.env, FUZZ_SCALE: scale, FUZZ_SEED: seed } });
process.exit(r.status ?? 1);
