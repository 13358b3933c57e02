/**
 * diffusers' list of generators (`generator=[g0, g1, ...]`): a batch tensor [B, ...] is drawn as B
 * tensors [1, ...], image i from generator i (randn_tensor does this), so image i of a batch gets the
 * same noise as a batch of one from its own generator. A1111 gives every image its own seed this way.
 */
import type { NoiseGenerator } from "../schedulers/types.js";

export class PerImageGenerator implements NoiseGenerator {
  constructor(readonly generators: readonly NoiseGenerator[]) {
    if (generators.length === 0) throw new RangeError("a list of generators must not be empty");
  }

  randn(shape: number[]): Float32Array {
    const [b, ...rest] = shape;
    if (b !== this.generators.length) {
      throw new RangeError(`a list of ${this.generators.length} generators cannot draw a batch of ${b} ([${shape}]); pass one generator per image`);
    }
    const one = [1, ...rest];
    const size = rest.reduce((x, y) => x * y, 1);
    const out = new Float32Array(b * size);
    this.generators.forEach((g, i) => out.set(g.randn(one), i * size));
    return out;
  }
}
