export { TorchGenerator } from "./torch-generator.js";
export { MT19937 } from "./mt19937.js";
export { PerImageGenerator } from "./per-image-generator.js";
