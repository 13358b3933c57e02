/**
 * AUTOMATIC1111's composable diffusion (prompt_parser.get_multicond_prompt_list): a positive prompt
 * split at the word AND into sub-prompts, each with an optional trailing weight ("a cat AND a dog:1.2"),
 * each guided against the one negative prompt: uncond + cfg·Σ w·(cond_i - uncond).
 */

export interface SubPrompt { text: string; weight: number }

const AND = /\bAND\b/;
// A1111's re_weight: the text, then an optional ":number" and trailing spaces
const WEIGHT = /^([\s\S]*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$/;

/** The sub-prompts of `prompt` as A1111 splits them (one, weight 1, without AND). */
export function splitComposable(prompt: string): SubPrompt[] {
  return prompt.split(AND).map((sub) => {
    const m = WEIGHT.exec(sub);
    return m ? { text: m[1], weight: m[2] === undefined ? 1 : Number(m[2]) } : { text: sub, weight: 1 };
  });
}

/** Whether A1111 would compose `prompt` from several sub-prompts or weigh its one. */
export function isComposable(prompt: string): boolean {
  const subs = splitComposable(prompt);
  return subs.length > 1 || subs[0].weight !== 1;
}
