/** --offline and --token, shared by every command that may download from the Hub; progress on stderr. */
import { progressPrinter, type HubOptions } from "../hub/index.js";

export const HUB_OPTIONS = {
  offline: { type: "boolean" },
  token: { type: "string" },
} as const;

export const HUB_HELP = `  --offline            use the Hugging Face cache only, never the network (also HF_HUB_OFFLINE=1)
  --token T            Hub access token for gated or private repos (default HF_TOKEN, else the token file
                       of huggingface-cli login); HF_ENDPOINT sets a mirror`;

export function hubOptionsFrom(values: Record<string, unknown>): HubOptions {
  return {
    ...(values.offline === true ? { offline: true } : {}),
    ...(typeof values.token === "string" ? { token: values.token } : {}),
    onProgress: progressPrinter(process.stderr),
  };
}
