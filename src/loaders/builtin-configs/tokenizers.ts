/**
 * The special-token settings of SDXL's two tokenizers (tokenizer_config.json / special_tokens_map.json).
 * The BPE vocabulary and merges (OpenAI CLIP's, identical for both) are not shipped with the package:
 * a single-file checkpoint needs them from a diffusers folder (`--config DIR`, its tokenizer/ and
 * tokenizer_2/) or another local copy. Both tokenizers share the vocabulary; they differ only in padding.
 */

export interface TokenizerSpecials {
  bosToken: string;
  eosToken: string;
  padToken: string;
  unkToken: string;
  maxLength: number;
}

/** tokenizer/: pads with the end-of-text token. */
export const SDXL_TOKENIZER: Readonly<TokenizerSpecials> = {
  bosToken: "<|startoftext|>", eosToken: "<|endoftext|>", padToken: "<|endoftext|>", unkToken: "<|endoftext|>", maxLength: 77,
};

/** tokenizer_2/: pads with "!" (id 0), as OpenCLIP does. */
export const SDXL_TOKENIZER_2: Readonly<TokenizerSpecials> = {
  bosToken: "<|startoftext|>", eosToken: "<|endoftext|>", padToken: "!", unkToken: "<|endoftext|>", maxLength: 77,
};
