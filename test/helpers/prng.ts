/** A small seeded PRNG (mulberry32) for reproducible fuzz tests: the seed is printed on failure. */
export class Prng {
  private s: number;
  constructor(readonly seed: number) { this.s = seed >>> 0; }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(items: readonly T[]): T { return items[this.int(items.length)]; }
  chance(p: number): boolean { return this.next() < p; }
}

/** How many cases a fuzz test runs: `base`, times FUZZ_SCALE (e.g. FUZZ_SCALE=20 for a long run). */
export function fuzzCases(base: number): number {
  const scale = Number(process.env.FUZZ_SCALE ?? 1);
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

/** Seed of a fuzz run: FUZZ_SEED, or a fixed default so that CI runs are reproducible. */
export const fuzzSeed = (fallback: number): number => Number(process.env.FUZZ_SEED ?? fallback);
