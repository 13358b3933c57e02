/**
 * diffusers' tiled VAE (AutoencoderKL.enable_tiling, the pipelines' enable_vae_tiling): above one tile the
 * latent (decode) or the image (encode) is cut into tiles overlapping by a quarter, each tile goes through the
 * VAE alone, and each tile's overlap with the (already blended) tile above and then the one on its left is
 * blended linearly before it is cropped into place. Memory stays that of one tile whatever the image size
 * (the SDXL VAE decoder peaks at 5.5 GiB at 1024x1024 on the CPU, and grows with the pixels); tile seams
 * are softened, not gone, since each tile's GroupNorms and attention see only its own pixels. Written here because the tiles
 * must run through our own sessions; the geometry and the blending follow diffusers' code step by step.
 */
import { PipelineInputError } from "./errors.js";

/** Tile side in image pixels: diffusers' tile_sample_min_size (default: the VAE config's sample_size). */
export interface VaeTiling { tileSize: number }

/** diffusers' tile_overlap_factor. */
const OVERLAP = 0.25;

/**
 * A tile size checked for a VAE of `scaleFactor` (8 for SDXL): a multiple of 4·scaleFactor pixels (32), so
 * that the tile, its stride (3/4) and its crop are whole latent pixels and the tiles add up to the image,
 * and at least 8·scaleFactor (64).
 */
export function checkTileSize(tileSize: number, scaleFactor: number, what = "vaeTiling.tileSize"): number {
  const multiple = 4 * scaleFactor, min = 8 * scaleFactor;
  if (!Number.isInteger(tileSize) || tileSize < min || tileSize % multiple !== 0) {
    throw new PipelineInputError(`${what} must be a multiple of ${multiple} pixels, at least ${min}, got ${tileSize}`);
  }
  return tileSize;
}

/** One axis of a tiled pass, in input units (where tiles are cut) and output units (where they are blended). */
export interface TileAxis {
  /** Tile offsets: range(0, size, stride) in input units. */
  starts: number[];
  /** Tile side in input units (the last tiles may be shorter). */
  tile: number;
  /** Output rows or columns blended with the previous tile. */
  blend: number;
  /** Output rows or columns each tile keeps (the last ones may keep fewer). */
  keep: number;
}

/**
 * The tiling of one axis of `size` input units. Decode: the input is the latent, the output the image
 * (`outPerIn` = the VAE's scale factor); encode: the reverse (`outPerIn` = 1 / scale factor).
 */
export function tileAxis(size: number, inTile: number, outTile: number): TileAxis {
  const stride = Math.trunc(inTile * (1 - OVERLAP));
  const blend = Math.trunc(outTile * OVERLAP);
  const starts: number[] = [];
  for (let s = 0; s < size; s += stride) starts.push(s);
  return { starts, tile: inTile, blend, keep: outTile - blend };
}

/** A [C, h, w] block. */
export interface Planes { data: Float32Array; channels: number; height: number; width: number }

/** Rows [y0, y1) and columns [x0, x1) of `p` as a block of their own. */
function cropPlanes(p: Planes, y0: number, y1: number, x0: number, x1: number): Planes {
  const height = Math.min(y1, p.height) - y0, width = Math.min(x1, p.width) - x0;
  const data = new Float32Array(p.channels * height * width);
  for (let c = 0; c < p.channels; c++) {
    for (let y = 0; y < height; y++) {
      const from = (c * p.height + y0 + y) * p.width + x0;
      data.set(p.data.subarray(from, from + width), (c * height + y) * width);
    }
  }
  return { data, channels: p.channels, height, width };
}

const f = Math.fround;

/** diffusers' blend_v: `b`'s first rows take in `a`'s last ones, a's weight falling linearly (b changes in place). */
function blendRows(a: Planes, b: Planes, extent: number): void {
  const e = Math.min(a.height, b.height, extent);
  for (let y = 0; y < e; y++) {
    const wa = f(1 - y / e), wb = f(y / e);
    for (let c = 0; c < b.channels; c++) {
      const ra = (c * a.height + a.height - e + y) * a.width, rb = (c * b.height + y) * b.width;
      for (let x = 0; x < b.width; x++) b.data[rb + x] = f(f(a.data[ra + x] * wa) + f(b.data[rb + x] * wb));
    }
  }
}

/** diffusers' blend_h: the same along columns. */
function blendColumns(a: Planes, b: Planes, extent: number): void {
  const e = Math.min(a.width, b.width, extent);
  for (let x = 0; x < e; x++) {
    const wa = f(1 - x / e), wb = f(x / e);
    for (let c = 0; c < b.channels; c++) {
      for (let y = 0; y < b.height; y++) {
        const ia = (c * a.height + y) * a.width + a.width - e + x, ib = (c * b.height + y) * b.width + x;
        b.data[ib] = f(f(a.data[ia] * wa) + f(b.data[ib] * wb));
      }
    }
  }
}

/**
 * Runs `run` on every tile of `input` and blends the results into one block, as diffusers' tiled_decode /
 * tiled_encode do. Tiles of one shape run one after another (a session is compiled per shape).
 */
export async function runTiled(
  input: Planes, rows: TileAxis, cols: TileAxis, run: (tile: Planes) => Promise<Planes>, signal?: AbortSignal,
): Promise<Planes> {
  const cut = rows.starts.map((y) => cols.starts.map((x) => cropPlanes(input, y, y + rows.tile, x, x + cols.tile)));
  const out: Planes[][] = cut.map((row) => row.map(() => undefined as unknown as Planes));
  const order = cut.flatMap((row, i) => row.map((tile, j) => ({ i, j, key: `${tile.height}x${tile.width}` })));
  order.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const { i, j } of order) {
    signal?.throwIfAborted();
    out[i][j] = await run(cut[i][j]);
  }
  // Blend in diffusers' order: each tile with the blended tile above, then with the blended one on its left.
  for (let i = 0; i < out.length; i++) {
    for (let j = 0; j < out[i].length; j++) {
      if (i > 0) blendRows(out[i - 1][j], out[i][j], rows.blend);
      if (j > 0) blendColumns(out[i][j - 1], out[i][j], cols.blend);
    }
  }
  // Each tile's first `keep` rows and columns, side by side.
  const keptRows = out.map((row) => Math.min(rows.keep, row[0].height)), keptCols = out[0].map((t) => Math.min(cols.keep, t.width));
  const height = keptRows.reduce((a, b) => a + b, 0), width = keptCols.reduce((a, b) => a + b, 0);
  const channels = out[0][0].channels;
  const data = new Float32Array(channels * height * width);
  for (let i = 0, y0 = 0; i < out.length; y0 += keptRows[i], i++) {
    for (let j = 0, x0 = 0; j < out[i].length; x0 += keptCols[j], j++) {
      const t = out[i][j];
      for (let c = 0; c < channels; c++) {
        for (let y = 0; y < keptRows[i]; y++) {
          const from = (c * t.height + y) * t.width;
          data.set(t.data.subarray(from, from + keptCols[j]), (c * height + y0 + y) * width + x0);
        }
      }
    }
  }
  return { data, channels, height, width };
}
