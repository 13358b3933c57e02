/**
 * The fixtures' deterministic "synth" weights: every element is a hash of the tensor's key and
 * its index, so full-size checkpoints can be made without downloads (see shared/fixtures/README.md).
 */

export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function synthTensor(name: string, shape: readonly number[], out?: Float32Array): Float32Array {
  const count = shape.reduce((a, b) => a * b, 1);
  const data = out ?? new Float32Array(count);
  const h = fnv1a32(name);
  let divisor = 0;
  let scale = 0;
  let offset = 0;
  if (shape.length >= 2) divisor = Math.sqrt(shape.slice(1).reduce((a, b) => a * b, 1));
  else if (name.endsWith("weight")) { scale = 0.1; offset = 1; }
  else scale = 0.1;
  for (let k = 0; k < count; k++) {
    let u = (Math.imul(k, 2654435761) + h) >>> 0;
    u = (u ^ (u >>> 16)) >>> 0;
    u = Math.imul(u, 0x45d9f3b) >>> 0;
    u = (u ^ (u >>> 16)) >>> 0;
    const r = (u / 4294967296) * 2 - 1;
    data[k] = divisor ? r / divisor : offset + scale * r;
  }
  return data;
}
