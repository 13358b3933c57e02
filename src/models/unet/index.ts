export * from "./config.js";
export * from "./unet-2d-condition.js";
