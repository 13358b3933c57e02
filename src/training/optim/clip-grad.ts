/**
 * torch.nn.utils.clip_grad_norm_ (norm_type 2, foreach path): the total norm is the 2-norm of the
 * per-tensor 2-norms; every gradient is multiplied by min(max_norm / (total + 1e-6), 1) (also when
 * that is 1, as torch does). Returns the total norm before clipping.
 */
const f = Math.fround;

export function clipGradNorm(grads: Iterable<Float32Array>, maxNorm: number): number {
  const list = [...grads];
  // torch reduces each tensor in float32 with wide accumulators; a double sum is as close as we can portably get.
  let sq = 0;
  for (const g of list) {
    let s = 0;
    for (let i = 0; i < g.length; i++) s += g[i] * g[i];
    const n = f(Math.sqrt(s));
    sq += n * n;
  }
  const total = f(Math.sqrt(sq));
  const coef = Math.min(f(f(maxNorm) / f(total + 1e-6)), 1);
  for (const g of list) for (let i = 0; i < g.length; i++) g[i] = f(g[i] * coef);
  return total;
}
