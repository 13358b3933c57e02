/** The parts of a diffusers SDXL-family folder that training reads directly (UNet, text encoders, scheduler). */
import { join } from "node:path";
import { folderComponent, type ComponentWeights, type Variant } from "../loaders/component.js";
import { resolveModelFolder } from "../loaders/model-folder.js";
import { checkCheckpoint } from "../models/components.js";
import { loadSchedulerConfig } from "../schedulers/index.js";

export interface TrainingModel {
  dir: string;
  name: string;
  unet: ComponentWeights;
  schedulerConfig: Record<string, unknown>;
  /** Opened on demand (only text-encoder training builds them into the graph). */
  textEncoder(i: 0 | 1): ComponentWeights;
}

export function openTrainingModel(spec: string, variant: Variant): TrainingModel {
  const model = resolveModelFolder(spec);
  const unet = folderComponent(join(model.dir, "unet"), variant);
  checkCheckpoint("unet", unet.config, unet.source, unet.where);
  return {
    dir: model.dir, name: model.name, unet,
    schedulerConfig: loadSchedulerConfig(model.dir),
    textEncoder: (i) => {
      const c = folderComponent(join(model.dir, i === 0 ? "text_encoder" : "text_encoder_2"), variant);
      checkCheckpoint(i === 0 ? "clip-text" : "clip-text-projection", c.config, c.source, c.where);
      return c;
    },
  };
}
