/** An image that cannot be read, or is refused (too large, malformed): the message says why. */
export class ImageFormatError extends Error {}
