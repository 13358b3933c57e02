/**
 * Reflect padding of CHW planes at the bottom and right (torch F.pad 'reflect': the edge pixel is not
 * repeated), as Real-ESRGAN and spandrel pad an image to a multiple of the pixel_unshuffle factor.
 * Where a plane is too small to reflect that far (torch refuses), the index stops at 0.
 */
export function reflectPadPlanes(data: Float32Array, c: number, h: number, w: number, padH: number, padW: number): Float32Array {
  if (padH === 0 && padW === 0) return data;
  const H = h + padH, W = w + padW;
  const src = (i: number, n: number) => (i < n ? i : Math.max(2 * n - 2 - i, 0));
  const out = new Float32Array(c * H * W);
  for (let k = 0; k < c; k++) for (let y = 0; y < H; y++) {
    const sy = src(y, h);
    for (let x = 0; x < W; x++) out[(k * H + y) * W + x] = data[(k * h + sy) * w + src(x, w)];
  }
  return out;
}
