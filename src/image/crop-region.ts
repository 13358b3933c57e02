/**
 * The crop box of "only masked" inpainting: the bounding box of the mask's non-zero pixels, padded,
 * clipped, then grown to the processing aspect ratio. Boxes are [x1, y1, x2, y2], half-open.
 */
import { MaskError, type GrayImage } from "./mask.js";

export type CropBox = [x1: number, y1: number, x2: number, y2: number];

/** Bounding box of the non-zero pixels (PIL's getbbox), or undefined for an all-zero mask. */
export function maskBoundingBox(mask: GrayImage): CropBox | undefined {
  const { width: w, height: h, data } = mask;
  let x1 = w, y1 = h, x2 = 0, y2 = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (data[y * w + x] === 0) continue;
      if (x < x1) x1 = x;
      if (x >= x2) x2 = x + 1;
      if (y < y1) y1 = y;
      y2 = y + 1;
    }
  }
  return x2 > 0 ? [x1, y1, x2, y2] : undefined;
}

/** Grows the box to pad on each side, clipped to the image. */
function padBox(b: CropBox, pad: number, w: number, h: number): CropBox {
  return [Math.max(b[0] - pad, 0), Math.max(b[1] - pad, 0), Math.min(b[2] + pad, w), Math.min(b[3] + pad, h)];
}

const floorDiv2 = (v: number) => Math.floor(v / 2); // Python's // on ints

/**
 * Widens (or heightens) the box to procW/procH, centred, then shifted back inside the image: the
 * integer rules shared by diffusers' get_crop_region step 3 and A1111's expand_crop_region. The grown
 * side uses int() (truncation) of the float difference, and splits it as d//2 before, d - d//2 after.
 */
export function expandCropRegion(box: CropBox, procW: number, procH: number, imageW: number, imageH: number): CropBox {
  let [x1, y1, x2, y2] = box;
  const ratioCrop = (x2 - x1) / (y2 - y1);
  const ratioProc = procW / procH;
  if (ratioCrop > ratioProc) {
    const d = Math.trunc((x2 - x1) / ratioProc - (y2 - y1));
    y1 -= floorDiv2(d);
    y2 += d - floorDiv2(d);
    if (y2 >= imageH) { const over = y2 - imageH; y2 -= over; y1 -= over; }
    if (y1 < 0) { y2 -= y1; y1 = 0; }
    if (y2 >= imageH) y2 = imageH;
  } else {
    const d = Math.trunc((y2 - y1) * ratioProc - (x2 - x1));
    x1 -= floorDiv2(d);
    x2 += d - floorDiv2(d);
    if (x2 >= imageW) { const over = x2 - imageW; x2 -= over; x1 -= over; }
    if (x1 < 0) { x2 -= x1; x1 = 0; }
    if (x2 >= imageW) x2 = imageW;
  }
  return [x1, y1, x2, y2];
}

/**
 * diffusers 0.27.2 `VaeImageProcessor.get_crop_region(mask, width, height, pad)`: the box of the
 * non-zero pixels of the "L" mask, `pad` more on each side (clipped), grown to width/height's aspect
 * ratio. diffusers divides by zero on an all-zero mask; this throws a MaskError instead.
 */
export function getCropRegion(mask: GrayImage, width: number, height: number, pad = 0): CropBox {
  const bb = maskBoundingBox(mask);
  if (!bb) throw new MaskError(`padding_mask_crop needs a mask with something to repaint, but the ${mask.width}x${mask.height} mask is all black`);
  return expandCropRegion(padBox(bb, pad, mask.width, mask.height), width, height, mask.width, mask.height);
}

/**
 * A1111's inpaint_full_res ("Inpaint area: Only masked") crop: masking.get_crop_region_v2(mask, pad)
 * then masking.expand_crop_region(box, width, height, mask.width, mask.height). Undefined for an
 * all-zero mask, where A1111 falls back to whole-picture img2img with a warning.
 */
export function a1111CropRegion(mask: GrayImage, width: number, height: number, pad = 0): CropBox | undefined {
  const bb = maskBoundingBox(mask);
  if (!bb) return undefined;
  return expandCropRegion(pad ? padBox(bb, pad, mask.width, mask.height) : bb, width, height, mask.width, mask.height);
}
