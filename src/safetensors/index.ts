export * from "./dtypes.js";
export * from "./read.js";
export * from "./write.js";
