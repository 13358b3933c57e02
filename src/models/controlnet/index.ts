export * from "./config.js";
export * from "./conditioning-embedding.js";
export * from "./controlnet-model.js";
