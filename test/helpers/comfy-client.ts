/** A ComfyUI client's HTTP steps for server tests: upload an image, run a prompt to its saved PNG, expect a refusal. */
import assert from "node:assert/strict";

/** POST /upload/image (overwrite): the name LoadImage takes. */
export async function comfyUpload(url: string, png: Buffer, name: string): Promise<string> {
  const form = new FormData();
  form.append("image", new Blob([new Uint8Array(png)], { type: "image/png" }), name);
  form.append("overwrite", "true");
  const r = await fetch(`${url}/upload/image`, { method: "POST", body: form });
  const out = await r.json() as any;
  assert.equal(r.status, 200, JSON.stringify(out));
  return out.name;
}

/** Queues a prompt, waits for it in /history (it must succeed) and returns the first PNG its SaveImage `node` made. */
export async function runComfyPrompt(url: string, prompt: unknown, node = "9"): Promise<Buffer> {
  const r = await fetch(`${url}/prompt`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt }) });
  const answer = await r.json() as any;
  assert.equal(r.status, 200, JSON.stringify(answer));
  for (let i = 0; i < 1200; i++) {
    const item = (await (await fetch(`${url}/history/${answer.prompt_id}`)).json() as any)[answer.prompt_id];
    if (item) {
      assert.equal(item.status.status_str, "success", JSON.stringify(item.status));
      const image = item.outputs[node].images[0];
      return Buffer.from(await (await fetch(`${url}/view?filename=${image.filename}&type=${image.type}`)).arrayBuffer());
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error("the prompt never finished");
}

/**
 * POSTs a prompt that must be refused (400): the node and input named (when given) and the messages
 * (top-level and per node) matching `message`.
 */
export async function comfyRefused(url: string, prompt: unknown, node: string | undefined, input: string | undefined, message: RegExp): Promise<void> {
  const res = await fetch(`${url}/prompt`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt }) });
  const out = await res.json() as any;
  assert.equal(res.status, 400, JSON.stringify(out));
  if (node) {
    assert.deepEqual(Object.keys(out.node_errors), [node], JSON.stringify(out));
    assert.equal(out.node_errors[node].errors[0].extra_info.input_name, input);
  }
  const errors = Object.values(out.node_errors as Record<string, any>).flatMap((e) => e.errors.flatMap((x: any) => [x.message, x.details]));
  assert.match([out.error.message, out.error.details, ...errors].join("\n"), message);
}
