/**
 * Tiled inference as Real-ESRGAN's tile_process does it: the image is cut into cores of `tile`
 * pixels; each core is run inside a window with `overlap` pixels of real image context on every side
 * (more at the image's edges), and only the core's part of the window's output is kept. Cropping
 * instead of blending: where the context covers the network's reach, the result equals the untiled
 * one; beyond it, what is lost is the far context's small influence, with no blend seam. Every window
 * has one size, so one compiled session serves them all.
 */
export interface TilePlan {
  /** Window size (input pixels) shared by every window. */
  winH: number;
  winW: number;
  windows: { y: number; x: number; /** core, in input pixels */ y0: number; y1: number; x0: number; x1: number }[];
}

/** Cores and windows along one axis; every position a multiple of `align` (pixel_unshuffle). */
function axis(len: number, tile: number, overlap: number): { win: number; spans: { s: number; a: number; b: number }[] } {
  const win = Math.min(tile + 2 * overlap, len);
  const spans: { s: number; a: number; b: number }[] = [];
  for (let a = 0; a < len; a += tile) {
    const b = Math.min(a + tile, len);
    spans.push({ s: Math.min(Math.max(a - overlap, 0), len - win), a, b });
  }
  return { win, spans };
}

/** `tile` 0 (or larger than the image): one window. tile and overlap are rounded up to multiples of `align`. */
export function planTiles(h: number, w: number, tile: number, overlap: number, align: number): TilePlan {
  const up = (v: number) => Math.ceil(v / align) * align;
  if (!tile || (tile >= h && tile >= w)) return { winH: h, winW: w, windows: [{ y: 0, x: 0, y0: 0, y1: h, x0: 0, x1: w }] };
  const t = Math.max(align, up(tile)), ov = up(Math.max(0, overlap));
  const ys = axis(h, t, ov), xs = axis(w, t, ov);
  const windows: TilePlan["windows"] = [];
  for (const yy of ys.spans) for (const xx of xs.spans) windows.push({ y: yy.s, x: xx.s, y0: yy.a, y1: yy.b, x0: xx.a, x1: xx.b });
  return { winH: ys.win, winW: xs.win, windows };
}

/** Copies the window [y, y + winH) × [x, x + winW) of CHW planes. */
export function cropPlanes(data: Float32Array, c: number, h: number, w: number, y: number, x: number, ch: number, cw: number): Float32Array {
  const out = new Float32Array(c * ch * cw);
  for (let k = 0; k < c; k++) for (let r = 0; r < ch; r++) {
    const src = (k * h + y + r) * w + x;
    out.set(data.subarray(src, src + cw), (k * ch + r) * cw);
  }
  return out;
}
