/**
 * The two SDXL text encoder configs (text_encoder/config.json, text_encoder_2/config.json): OpenAI CLIP ViT-L/14
 * and OpenCLIP ViT-bigG/14, shared by SDXL, SSD-1B and Vega. `architectures` is set so that with or without
 * projection never depends on the weights.
 */
// Generated from the reference configs in shared/fixtures (text_encoder/clip-{l,g}-synth/config.json); edit only to track upstream.

export const CLIP_L_TEXT: Readonly<Record<string, unknown>> = {
  "architectures": [
    "CLIPTextModel"
  ],
  "attention_dropout": 0.0,
  "bos_token_id": 0,
  "eos_token_id": 2,
  "pad_token_id": 1,
  "hidden_act": "quick_gelu",
  "hidden_size": 768,
  "initializer_factor": 1.0,
  "initializer_range": 0.02,
  "intermediate_size": 3072,
  "layer_norm_eps": 1e-05,
  "max_position_embeddings": 77,
  "model_type": "clip_text_model",
  "num_attention_heads": 12,
  "num_hidden_layers": 12,
  "projection_dim": 768,
  "vocab_size": 49408
};

export const CLIP_G_TEXT: Readonly<Record<string, unknown>> = {
  "architectures": [
    "CLIPTextModelWithProjection"
  ],
  "attention_dropout": 0.0,
  "bos_token_id": 0,
  "eos_token_id": 2,
  "pad_token_id": 1,
  "hidden_act": "gelu",
  "hidden_size": 1280,
  "initializer_factor": 1.0,
  "initializer_range": 0.02,
  "intermediate_size": 5120,
  "layer_norm_eps": 1e-05,
  "max_position_embeddings": 77,
  "model_type": "clip_text_model",
  "num_attention_heads": 20,
  "num_hidden_layers": 32,
  "projection_dim": 1280,
  "vocab_size": 49408
};
