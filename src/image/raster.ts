/**
 * Small PIL-like helpers on any interleaved 8-bit image (RgbImage, RgbaImage, GrayImage: the channel
 * count is data.length / (width·height)): new, crop, paste.
 */
export interface Image8 {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Channels per pixel, checked. */
export function channelsOf(img: Image8): number {
  const n = img.width * img.height;
  const c = n > 0 ? img.data.length / n : 0;
  if (!(img.width > 0 && img.height > 0) || !Number.isInteger(c) || c < 1 || c > 4) {
    throw new RangeError(`not an 8-bit image: ${img.data.length} bytes for ${img.width}x${img.height}`);
  }
  return c;
}

/** A width × height image of `channels`, all zero (PIL's Image.new: black, and transparent for RGBA). */
export function blank(width: number, height: number, channels: number, fill = 0): Image8 {
  return { width, height, data: new Uint8Array(width * height * channels).fill(fill) };
}

/** PIL's crop((x1, y1, x2, y2)); parts outside the image are zero, as in PIL. */
export function crop(img: Image8, x1: number, y1: number, x2: number, y2: number): Image8 {
  const c = channelsOf(img);
  const out = blank(x2 - x1, y2 - y1, c);
  paste(out, { width: img.width, height: img.height, data: img.data }, -x1, -y1);
  return out;
}

/**
 * PIL's paste(src, (x, y)) into `dst` in place, clipped to dst. Channel counts may differ: grey goes to
 * R = G = B, RGB into RGBA sets alpha 255, RGBA into RGB drops alpha (paste without a mask copies).
 */
export function paste(dst: Image8, src: Image8, x: number, y: number): void {
  const cd = channelsOf(dst), cs = channelsOf(src);
  for (let sy = Math.max(0, -y); sy < src.height && sy + y < dst.height; sy++) {
    for (let sx = Math.max(0, -x); sx < src.width && sx + x < dst.width; sx++) {
      const s = (sy * src.width + sx) * cs, d = ((sy + y) * dst.width + sx + x) * cd;
      for (let c = 0; c < cd; c++) {
        dst.data[d + c] = c === 3 ? (cs === 4 ? src.data[s + 3] : 255) : src.data[s + (cs >= 3 ? c : 0)];
      }
    }
  }
}

/** Whole multiples of 8 about the centre (ComfyUI's vae_encode_crop_pixels): the image itself when it has them. */
export function cropToEights<T extends Image8>(img: T): T {
  const w = img.width - (img.width % 8), h = img.height - (img.height % 8);
  if (w === img.width && h === img.height) return img;
  const x = (img.width % 8) >> 1, y = (img.height % 8) >> 1;
  return crop(img, x, y, x + w, y + h) as T;
}
