#!/usr/bin/env bash
# On the GPU machine, through `.device/run.sh` (bench/device-prep.sh made it): synth fp16 checkpoints
# (SSD-1B and SDXL UNets, the full SSD-1B pipeline; ~12 GB, written in parallel), then, most telling first (a
# timeout keeps what came before):
#  0. what the Vulkan driver offers (.device/vk-caps: cooperative-matrix shapes, subgroup sizes) into vk-caps.txt;
#  1. unet: SSD-1B and SDXL, 1024x1024, batch 2, fp16 UNet on webgpu: ms/step, TFLOP/s, share of peak;
#  2. ops: each product kind of the UNet alone (ops-webgpu.md: ms, TFLOP/s and the kernel variant onnxruntime
#     picked; docs/webgpu-matmul.md says what to look for);
#  3. q8: the SSD-1B UNet with 8-bit Linear weights (SSD1B_UNET_LINEAR_WEIGHTS=q8: com.microsoft.MatMulNBits, the one
#     product kernel with a tensor-core path on NVIDIA in onnxruntime 1.30; unet-webgpu-q8.md), then with the convs
#     too (SSD1B_UNET_CONV_WEIGHTS=q8: im2col + MatMulNBits; unet-webgpu-q8-conv.md);
#  4. pipeline: the whole 25-step 1024x1024 SSD-1B image, warm pipeline;
#  5. profile: one profiled SSD-1B UNet run: host time per kernel by op type against the run
#     (unet-webgpu-profile.md, bench/profile-summary.ts; the raw JSON too);
#  6. fp32: the SSD-1B UNet with MatMul and Conv in float32 (unet-webgpu-fp32-products.md);
#  7. options: the SSD-1B UNet under onnxruntime's WebGPU provider options (src/runtime/webgpu-options.ts): NHWC
#     layout (unet-webgpu-nhwc.md), then validation off with exact-size buffer reuse (unet-webgpu-novalidation.md).
# Results: bench/results/{unet,ops,pipeline}-webgpu.md, vk-caps.txt and a log, copied to $OUT (only $OUT comes back).
# PEAK_TFLOPS (default 989: H200 dense fp16), RUNS (default 5), SUITES (default all seven, e.g. SUITES="fp32 options" for
# a second call) may be set; a dry run anywhere (lavapipe):
#   OUT=/tmp/x UNETS=tiny-ssd PIPELINE=tiny-ssd SIZE=64 STEPS=3 SSD1B_FIXTURES=../shared/fixtures bash bench/device-run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench/results}
res=${SSD1B_BENCH_RESULTS:-$PWD/bench/results}; export SSD1B_BENCH_RESULTS=$res
mkdir -p "$out" "$res"
log="$out/device-run.log"
export SSD1B_FIXTURES=${SSD1B_FIXTURES:-$PWD/.device/fixtures} SSD1B_BENCH_DIR=${SSD1B_BENCH_DIR:-/tmp/ssd1b-bench}
unets=${UNETS:-ssd-1b,sdxl} pipeline=${PIPELINE:-ssd-1b} size=${SIZE:-1024} steps=${STEPS:-25} suites=${SUITES:-unet ops q8 pipeline profile fp32 options}
m=${unets%%,*} # the one UNet of the later suites
has() { [[ " $suites " == *" $1 "* ]]; }
bench() { node --expose-gc dist/bench/run.js --device webgpu --peak-tflops "${PEAK_TFLOPS:-989}" "$@"; }
stamp() { echo "== $(date -u +%T) $*" | tee -a "$log"; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; df -h /tmp | tail -1; } >> "$log" 2>&1
[ -x .device/vk-caps ] && { .device/vk-caps || echo "vk-caps failed"; } 2>&1 | tee -a "$log" "$out/vk-caps.txt"
stamp "synth (parallel)"
pids=()
if has unet; then for u in ${unets//,/ }; do bench --suites synth-unet --models "$u" >> "$log" 2>&1 & pids+=($!); done
elif has q8 || has profile || has fp32 || has options; then bench --suites synth-unet --models "$m" >> "$log" 2>&1 & pids+=($!); fi
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
if has ops; then
  stamp "ops suite (the UNet's products alone)"
  bench --suites ops --sizes "$size" --runs 3 >> "$log" 2>&1 || stamp "ops suite FAILED"
  cp "$res/ops-webgpu.md" "$out/" 2>/dev/null
fi
# One more table of the $m UNet under some environment: variant <what> <file in $out> VAR=value...
# The unet suite's table in $res is the committed one: a variant overwrites it, so it is put back after each.
variant() {
  local what=$1 file=$2; shift 2
  stamp "unet suite, $m, $what"
  ( export "$@"; bench --suites unet --models "$m" --sizes "$size" --runs 3 ) >> "$log" 2>&1 \
    && cp "$res/unet-webgpu.md" "$out/$file" || stamp "$what: unet suite FAILED"
  [ -f "$out/unet-webgpu.md" ] && cp "$out/unet-webgpu.md" "$res/unet-webgpu.md"
}
# 8-bit weights: ops-webgpu.md's *-q8 rows say whether SubgroupMatrixMatMulNBits (tensor cores) ran and how fast.
if has q8; then
  variant "q8 Linear weights" unet-webgpu-q8.md SSD1B_UNET_LINEAR_WEIGHTS=q8
  variant "q8 Linear and conv weights" unet-webgpu-q8-conv.md SSD1B_UNET_LINEAR_WEIGHTS=q8 SSD1B_UNET_CONV_WEIGHTS=q8
fi
if has pipeline; then
  stamp "pipeline suite"
  bench --suites pipeline --models "$pipeline" --sizes "$size" --steps "$steps" >> "$log" 2>&1 || stamp "pipeline suite FAILED"
  cp "$res/pipeline-webgpu.md" "$out/" 2>/dev/null
fi
if has profile; then
  prof=/tmp/ssd1b-profile
  stamp "profiled $m UNet run"
  rm -rf "$prof" && mkdir -p "$prof"
  SSD1B_PROFILE=$prof/unet node dist/bench/unet-worker.js "$SSD1B_BENCH_DIR/$m/unet" "$size" 2 2 webgpu float16 >> "$log" 2>&1 || stamp "profiled run FAILED"
  json=$(ls -S "$prof"/unet*.json 2>/dev/null | head -1) # the largest: the UNet's session, not the attention self-check's
  [ -n "$json" ] && node dist/bench/profile-summary.js "$json" "$m UNet, ${size}x${size}, batch 2, fp16, webgpu" > "$out/unet-webgpu-profile.md" && cp "$json" "$out/unet-webgpu-profile.json"
fi
# What fp32 products cost: onnxruntime's WebGPU fp16 MatMul/Conv accumulate in fp16; in fp32 they cut the
# full-size SSD-1B UNet's error from 1.7e-2 to 1.2e-3 relative L2 on lavapipe (docs/webgpu-fp16.md).
has fp32 && variant "MatMul and Conv in float32" unet-webgpu-fp32-products.md SSD1B_UNET_FLOAT32_OPS=MatMul+Conv+Softmax+Sin+Cos
# Provider options: each against the default fp16 table above.
if has options; then
  variant "preferredLayout NHWC" unet-webgpu-nhwc.md SSD1B_WEBGPU_LAYOUT=NHWC
  variant "validationMode disabled, storageBufferCacheMode simple" unet-webgpu-novalidation.md SSD1B_WEBGPU_VALIDATION=disabled SSD1B_WEBGPU_BUFFER_CACHE=simple
fi
stamp "done"
cat "$out/vk-caps.txt" "$out/unet-webgpu.md" "$out/ops-webgpu.md" "$out/unet-webgpu-q8.md" "$out/unet-webgpu-q8-conv.md" "$out/pipeline-webgpu.md" "$out/unet-webgpu-profile.md" "$out/unet-webgpu-fp32-products.md" "$out/unet-webgpu-nhwc.md" "$out/unet-webgpu-novalidation.md" 2>/dev/null
