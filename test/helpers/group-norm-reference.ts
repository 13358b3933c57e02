/**
 * torch.nn.GroupNorm's formula in float64 (two-pass statistics), and a one-GroupNorm graph with the
 * affine it assumes: weight 1 + 0.05·sin(c), bias 0.1·cos(c).
 */
import { Graph } from "../../src/ir/graph.js";
import { groupNorm } from "../../src/ir/functional.js";

const weight = (c: number) => 1 + 0.05 * Math.sin(c), bias = (c: number) => 0.1 * Math.cos(c);

export function groupNormGraph(shape: number[], groups: number, eps: number): Graph {
  const g = new Graph();
  const c = shape[1];
  const x = g.input("x", shape);
  const w = g.constant(Float32Array.from({ length: c }, (_, i) => weight(i)), [c]);
  const b = g.constant(Float32Array.from({ length: c }, (_, i) => bias(i)), [c]);
  g.output("y", groupNorm(x, w, b, groups, eps));
  return g;
}

export function groupNormReference(x: Float32Array, shape: number[], groups: number, eps: number): Float64Array {
  const [n, c] = shape, spatial = shape.slice(2).reduce((a, d) => a * d, 1), per = (c / groups) * spatial;
  const out = new Float64Array(x.length);
  for (let i = 0; i < n * groups; i++) {
    const off = i * per;
    let mean = 0, v = 0;
    for (let j = 0; j < per; j++) mean += x[off + j];
    mean /= per;
    for (let j = 0; j < per; j++) v += (x[off + j] - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / per + eps);
    for (let j = 0; j < per; j++) {
      const ch = (i % groups) * (c / groups) + Math.floor(j / spatial);
      out[off + j] = (x[off + j] - mean) * rstd * weight(ch) + bias(ch);
    }
  }
  return out;
}
