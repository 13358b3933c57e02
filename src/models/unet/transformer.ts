/** The transformer blocks live in models/shared (shared with ControlNet); the old path stays here. */
export { Attention } from "../shared/attention.js";
export { BasicTransformerBlock, FeedForward, Transformer2DModel } from "../shared/transformer-2d.js";
