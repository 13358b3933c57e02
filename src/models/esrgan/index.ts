export { RRDBNet, RRDB, ResidualDenseBlock, buildRrdbNet } from "./rrdbnet.js";
export { inferRrdbNetConfig, unshuffleFactor, EsrganModelError, REQUIRED_KEYS, type RrdbNetConfig } from "./config.js";
export { canonicalTensors, detectLayout, layoutName, type EsrganLayout } from "./layouts.js";
export { openEsrganFile, openEsrganTensors, rrdbNetParameters, type EsrganWeights } from "./load.js";
export { planTiles, type TilePlan } from "./tiling.js";
