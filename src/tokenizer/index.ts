export { CLIPTokenizer } from "./clip-tokenizer.js";
export type { CLIPTokenizerOptions } from "./clip-tokenizer.js";
export { BYTE_TO_UNICODE, toByteLevel } from "./bytes-to-unicode.js";
