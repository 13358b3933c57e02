/**
 * A marker walk over a JPEG that reads the frame size (SOFn) and counts the scans without decoding:
 * it runs before jpeg-js, so that a tiny file declaring a huge frame or thousands of scans is refused
 * in microseconds. Linear in the file size.
 */
import { ImageFormatError } from "./errors.js";
import { MAX_JPEG_SCANS, checkImageSize, type DecodeLimits } from "./limits.js";

export interface JpegFrameInfo {
  width: number;
  height: number;
  components: number;
  scans: number;
}

// SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

export function readJpegFrame(bytes: Uint8Array): JpegFrameInfo {
  const bad = (why: string): never => { throw new ImageFormatError(`not a readable JPEG (${why})`); };
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) bad("no start-of-image marker");
  let frame: JpegFrameInfo | undefined;
  let scans = 0;
  let pos = 2;
  while (pos < bytes.length) {
    while (pos < bytes.length && bytes[pos] !== 0xff) pos++; // stray bytes before a marker: skipped, as libjpeg does
    while (pos < bytes.length && bytes[pos] === 0xff) pos++; // fill bytes
    if (pos >= bytes.length) break;
    const marker = bytes[pos++];
    if (marker === 0xd9) break; // EOI
    if ((marker >= 0xd0 && marker <= 0xd8) || marker === 0x01) continue; // RSTn, SOI, TEM: no length
    if (pos + 2 > bytes.length) bad("truncated marker segment");
    const len = (bytes[pos] << 8) | bytes[pos + 1];
    if (len < 2 || pos + len > bytes.length) bad(`marker segment of ${len} bytes runs past the end`);
    if (isSof(marker)) {
      if (frame) bad("more than one frame header");
      if (len < 8) bad("short frame header");
      const height = (bytes[pos + 3] << 8) | bytes[pos + 4];
      const width = (bytes[pos + 5] << 8) | bytes[pos + 6];
      const components = bytes[pos + 7];
      if (height === 0) bad("the frame height is defined later (DNL), which is not supported");
      if (components !== 1 && components !== 3 && components !== 4) bad(`${components} colour components`);
      frame = { width, height, components, scans: 0 };
    }
    pos += len;
    if (marker === 0xda) { // SOS: the entropy-coded data runs to the next marker that is not a stuffed 0 or RSTn
      if (!frame) bad("scan before the frame header");
      if (++scans > MAX_JPEG_SCANS) bad(`more than ${MAX_JPEG_SCANS} scans`);
      while (pos + 1 < bytes.length && !(bytes[pos] === 0xff && bytes[pos + 1] !== 0 && (bytes[pos + 1] < 0xd0 || bytes[pos + 1] > 0xd7))) pos++;
      if (pos + 1 >= bytes.length) break;
    }
  }
  if (!frame) return bad("no frame header");
  return { ...frame, scans };
}

/** readJpegFrame, then the size limit: throws an ImageFormatError before any pixel is decoded. */
export function checkJpeg(bytes: Uint8Array, limits?: DecodeLimits): JpegFrameInfo {
  const info = readJpegFrame(bytes);
  checkImageSize("JPEG", info.width, info.height, limits);
  // Every 8x8 luma block costs at least one bit (its DC code), so a file smaller than pixels / 512
  // bytes cannot hold its frame: jpeg-js would decode the missing data as zeros, at full cost.
  const least = Math.floor((info.width * info.height) / 512);
  if (bytes.length < least) {
    throw new ImageFormatError(`truncated JPEG: ${bytes.length} bytes cannot hold a ${info.width}x${info.height} image (at least ${least} bytes)`);
  }
  return info;
}
