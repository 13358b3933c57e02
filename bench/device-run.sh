#!/usr/bin/env bash
# On the GPU machine, through `.device/run.sh` (bench/device-prep.sh made it): synth fp16 checkpoints
# (SSD-1B and SDXL UNets, the full SSD-1B pipeline; ~12 GB, written in parallel), then
#  1. the UNet suite: SSD-1B and SDXL, 1024x1024, batch 2, fp16 UNet on webgpu: ms/step, TFLOP/s, share of peak;
#  2. the whole 25-step 1024x1024 SSD-1B image, warm pipeline;
#  3. the SSD-1B UNet again with MatMul and Conv in float32 (unet-webgpu-fp32-products.md);
#  4. the SSD-1B UNet under onnxruntime's WebGPU provider options (src/runtime/webgpu-options.ts): NHWC
#     layout (unet-webgpu-nhwc.md), then validation off with exact-size buffer reuse (unet-webgpu-novalidation.md).
# Results: bench/results/{unet,pipeline}-webgpu.md and a log, copied to $OUT (only $OUT comes back).
# PEAK_TFLOPS (default 989: H200 dense fp16), RUNS (default 5), SUITES (default "unet pipeline") may be set; a dry run anywhere (lavapipe):
#   OUT=/tmp/x UNETS=tiny-ssd PIPELINE=tiny-ssd SIZE=64 STEPS=3 SSD1B_FIXTURES=../shared/fixtures bash bench/device-run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/results}
res=${SSD1B_BENCH_RESULTS:-$PWD/bench/results}; export SSD1B_BENCH_RESULTS=$res
mkdir -p "$out" "$res"
log="$out/device-run.log"
export SSD1B_FIXTURES=${SSD1B_FIXTURES:-$PWD/.device/fixtures} SSD1B_BENCH_DIR=${SSD1B_BENCH_DIR:-/tmp/ssd1b-bench}
unets=${UNETS:-ssd-1b,sdxl} pipeline=${PIPELINE:-ssd-1b} size=${SIZE:-1024} steps=${STEPS:-25} suites=${SUITES:-unet pipeline options}
has() { [[ " $suites " == *" $1 "* ]]; }
bench() { node --expose-gc dist/bench/run.js --device webgpu --peak-tflops "${PEAK_TFLOPS:-989}" "$@"; }
stamp() { echo "== $(date -u +%T) $*" | tee -a "$log"; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; df -h /tmp | tail -1; } >> "$log" 2>&1
stamp "synth (parallel)"
pids=()
has unet && for m in ${unets//,/ }; do bench --suites synth-unet --models "$m" >> "$log" 2>&1 & pids+=($!); done
has pipeline && { bench --suites synth-pipeline --models "$pipeline" >> "$log" 2>&1 & pids+=($!); }
[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}"
stamp "smoke: tiny UNet (adapter, shaders)"
bench --suites unet --models tiny-ssd --sizes 64 --runs 2 >> "$log" 2>&1 || stamp "tiny smoke FAILED"
cp "$res/unet-webgpu.md" "$out/unet-webgpu-tiny.md" 2>/dev/null
if has unet; then
  stamp "unet suite"
  bench --suites unet --models "$unets" --sizes "$size" --runs "${RUNS:-5}" >> "$log" 2>&1 || stamp "unet suite FAILED"
  cp "$res/unet-webgpu.md" "$out/" 2>/dev/null
fi
if has pipeline; then
  stamp "pipeline suite"
  bench --suites pipeline --models "$pipeline" --sizes "$size" --steps "$steps" >> "$log" 2>&1 || stamp "pipeline suite FAILED"
  cp "$res/pipeline-webgpu.md" "$out/" 2>/dev/null
fi
# What fp32 products cost: onnxruntime's WebGPU fp16 MatMul/Conv accumulate in fp16; in fp32 they cut the
# full-size SSD-1B UNet's error from 1.7e-2 to 1.2e-3 relative L2 on lavapipe (docs/webgpu-fp16.md).
if has unet; then
  stamp "unet suite, ${unets%%,*}, MatMul and Conv in float32"
  SSD1B_UNET_FLOAT32_OPS=MatMul+Conv+Softmax+Sin+Cos bench --suites unet --models "${unets%%,*}" --sizes "$size" --runs "${RUNS:-5}" >> "$log" 2>&1 \
    && cp "$res/unet-webgpu.md" "$out/unet-webgpu-fp32-products.md" || stamp "fp32-products unet suite FAILED"
  cp "$out/unet-webgpu.md" "$res/unet-webgpu.md" 2>/dev/null # the default fp16 table stays the committed one
fi
# Provider options, last (a timeout keeps everything before): each against the default fp16 table above.
if has options; then
  m=${unets%%,*}
  stamp "unet suite, $m, preferredLayout NHWC"
  SSD1B_WEBGPU_LAYOUT=NHWC bench --suites unet --models "$m" --sizes "$size" --runs 3 >> "$log" 2>&1 \
    && cp "$res/unet-webgpu.md" "$out/unet-webgpu-nhwc.md" || stamp "NHWC unet suite FAILED"
  stamp "unet suite, $m, validationMode disabled, storageBufferCacheMode simple"
  SSD1B_WEBGPU_VALIDATION=disabled SSD1B_WEBGPU_BUFFER_CACHE=simple bench --suites unet --models "$m" --sizes "$size" --runs 3 >> "$log" 2>&1 \
    && cp "$res/unet-webgpu.md" "$out/unet-webgpu-novalidation.md" || stamp "no-validation unet suite FAILED"
  cp "$out/unet-webgpu.md" "$res/unet-webgpu.md" 2>/dev/null
fi
stamp "done"
cat "$out/unet-webgpu.md" "$out/pipeline-webgpu.md" "$out/unet-webgpu-fp32-products.md" "$out/unet-webgpu-nhwc.md" "$out/unet-webgpu-novalidation.md" 2>/dev/null
