#!/usr/bin/env bash
# Here, on a machine with Node and `npm ci` done: builds dist/, packs the runtime for the GPU machine
# (../shared/tools/device-prep.sh writes .device/: node, node_modules, Vulkan loader) and copies in the
# fixture files the bench reads (model configs, tokenizers; the GPU machine has no ../shared).
# Then: device tool run, carry [".device", "dist"], command `bash .device/run.sh bash bench/device-run.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p .
# The shared tool registers /.device/ in .git/info/exclude, which fails in a git worktree (.git is a
# file there); .gitignore already ignores /.device/, so that line is left out.
tool=$(mktemp); sed '/\.git\/info\/exclude/d' ../shared/tools/device-prep.sh > "$tool"
bash "$tool"; rm -f "$tool"
src=../shared/fixtures dst=.device/fixtures
mkdir -p "$dst/unet/tiny-ssd" "$dst/text_encoder/clip-l-synth" "$dst/text_encoder/clip-g-synth" "$dst/pipeline"
cp -r "$src/configs" "$src/README.md" "$dst/"
cp "$src/unet/tiny-ssd/config.json" "$dst/unet/tiny-ssd/"
for te in clip-l-synth clip-g-synth; do cp "$src/text_encoder/$te/config.json" "$dst/text_encoder/$te/"; done
cp -r "$src/pipeline/tiny-ssd" "$dst/pipeline/"
# What the GPU's Vulkan driver offers (cooperative-matrix shapes, subgroup sizes): bench/vk-caps.c, run first on the device.
gcc -O2 bench/vk-caps.c -o .device/vk-caps -lvulkan || echo "vk-caps not built (gcc or the Vulkan headers missing): device-run.sh skips it" >&2
du -sh .device dist
