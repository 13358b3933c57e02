/**
 * basicsr's RRDBNet (basicsr/archs/rrdbnet_arch.py), the network of Real-ESRGAN and the "4x" ESRGAN
 * upscalers, with its state-dict names: conv_first, body.N.rdbK.convJ, conv_body, conv_up1, conv_up2,
 * conv_hr, conv_last. It always upsamples 4x inside; x2 and x1 models pixel-unshuffle their input first.
 */
import * as F from "../../ir/functional.js";
import { ShapeError, type Tensor } from "../../ir/tensor.js";
import { Conv2d } from "../../nn/layers.js";
import { Graph } from "../../ir/graph.js";
import { WeightBuilder, shapeOnlySource } from "../../nn/weights.js";
import { unshuffleFactor, type RrdbNetConfig } from "./config.js";

const SLOPE = 0.2;
/** The residual scaling of basicsr's RDB and RRDB. */
const RESIDUAL = 0.2;
const lrelu = (x: Tensor) => F.leakyRelu(x, SLOPE);
const conv3 = (vb: WeightBuilder, inCh: number, outCh: number) => new Conv2d(vb, inCh, outCh, 3, { padding: 1 });

/** Five densely connected convs: conv_j sees the input and every earlier output, concatenated in that order. */
export class ResidualDenseBlock {
  private readonly convs: Conv2d[];
  constructor(vb: WeightBuilder, numFeat: number, numGrowCh: number) {
    this.convs = [1, 2, 3, 4, 5].map((j) => conv3(vb.pp(`conv${j}`), numFeat + (j - 1) * numGrowCh, j === 5 ? numFeat : numGrowCh));
  }
  forward(x: Tensor): Tensor {
    const feats = [x];
    // A copy per concat: the node keeps its inputs array.
    for (const conv of this.convs.slice(0, 4)) feats.push(lrelu(conv.forward(F.concat([...feats], 1))));
    const x5 = this.convs[4].forward(F.concat([...feats], 1));
    return F.add(F.mul(x5, RESIDUAL), x);
  }
}

/** Residual in residual dense block: three RDBs, scaled by 0.2, plus the input. */
export class RRDB {
  private readonly rdbs: ResidualDenseBlock[];
  constructor(vb: WeightBuilder, numFeat: number, numGrowCh: number) {
    this.rdbs = [1, 2, 3].map((k) => new ResidualDenseBlock(vb.pp(`rdb${k}`), numFeat, numGrowCh));
  }
  forward(x: Tensor): Tensor {
    const y = this.rdbs.reduce((h, rdb) => rdb.forward(h), x);
    return F.add(F.mul(y, RESIDUAL), x);
  }
}

export class RRDBNet {
  private readonly convFirst: Conv2d;
  private readonly body: RRDB[];
  private readonly convBody: Conv2d;
  private readonly convUp1: Conv2d;
  private readonly convUp2: Conv2d;
  private readonly convHr: Conv2d;
  private readonly convLast: Conv2d;
  constructor(vb: WeightBuilder, readonly config: RrdbNetConfig) {
    const { numInCh, numOutCh, numFeat, numBlock, numGrowCh } = config;
    const f = unshuffleFactor(config);
    this.convFirst = conv3(vb.pp("conv_first"), numInCh * f * f, numFeat);
    this.body = Array.from({ length: numBlock }, (_, i) => new RRDB(vb.pp("body").pp(i), numFeat, numGrowCh));
    this.convBody = conv3(vb.pp("conv_body"), numFeat, numFeat);
    this.convUp1 = conv3(vb.pp("conv_up1"), numFeat, numFeat);
    this.convUp2 = conv3(vb.pp("conv_up2"), numFeat, numFeat);
    this.convHr = conv3(vb.pp("conv_hr"), numFeat, numFeat);
    this.convLast = conv3(vb.pp("conv_last"), numFeat, numOutCh);
  }

  /** x [N, num_in_ch, H, W] (H, W divisible by the unshuffle factor) -> [N, num_out_ch, H·scale, W·scale], unclamped. */
  forward(x: Tensor): Tensor {
    const f = unshuffleFactor(this.config);
    if (x.rank !== 4 || x.shape[1] !== this.config.numInCh || x.shape[2] % f !== 0 || x.shape[3] % f !== 0) {
      throw new ShapeError(`RRDBNet x${this.config.scale}: input [${x.shape}] must be [N, ${this.config.numInCh}, H, W] with H and W divisible by ${f}`);
    }
    const feat = this.convFirst.forward(F.pixelUnshuffle(x, f));
    const body = this.body.reduce((h, block) => block.forward(h), feat);
    const trunk = F.add(feat, this.convBody.forward(body));
    const up1 = lrelu(this.convUp1.forward(F.upsampleNearest(trunk)));
    const up2 = lrelu(this.convUp2.forward(F.upsampleNearest(up1)));
    return this.convLast.forward(lrelu(this.convHr.forward(up2)));
  }
}

/** The network on a graph input "image" of `shape`; returns the input and the output "upscaled". */
export function buildRrdbNet(vb: WeightBuilder, config: RrdbNetConfig, shape: readonly number[]): { image: Tensor; upscaled: Tensor } {
  const net = new RRDBNet(vb, config);
  const image = vb.graph.input("image", shape);
  const upscaled = net.forward(image);
  vb.graph.output("upscaled", upscaled);
  return { image, upscaled };
}

/** The basicsr-named parameters and shapes of a config (what its checkpoint must hold). */
export function rrdbNetParameters(config: RrdbNetConfig): Map<string, number[]> {
  const vb = WeightBuilder.root(new Graph(), shapeOnlySource());
  new RRDBNet(vb, config);
  return vb.requested();
}
