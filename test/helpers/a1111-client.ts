/** A1111 requests as the server tests send them. */
import assert from "node:assert/strict";

export const postJson = (url: string, path: string, body: unknown) =>
  fetch(url + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

/** POST /sdapi/v1/txt2img that must succeed: the first image's PNG bytes and the parsed `info`. */
export async function txt2imgFirst(url: string, body: Record<string, unknown>): Promise<{ image: Buffer; info: any }> {
  const r = await postJson(url, "/sdapi/v1/txt2img", body);
  assert.equal(r.status, 200, await r.clone().text());
  const a = await r.json() as { images: string[]; info: string };
  return { image: Buffer.from(a.images[0], "base64"), info: JSON.parse(a.info) };
}
