export * from "./dtypes.js";
export * from "./read.js";
export * from "./write.js";
export { parseHeader, MAX_HEADER_BYTES, MAX_RANK, MAX_ENTRIES, type HeaderTensor, type ParsedHeader } from "./header.js";
