export { RRDBNet, RRDB, ResidualDenseBlock, buildRrdbNet, rrdbNetParameters } from "./rrdbnet.js";
export { inferRrdbNetConfig, unshuffleFactor, EsrganModelError, REQUIRED_KEYS, type RrdbNetConfig } from "./config.js";
export { canonicalTensors, detectLayout, layoutName, type EsrganLayout } from "./layouts.js";
export { planTiles, type TilePlan } from "./tiling.js";
