/**
 * A linear pre-scan of header JSON before JSON.parse: a valid safetensors header nests three deep
 * (root object, tensor object, shape / offsets array), its arrays are short and its objects have a
 * bounded number of members, so deeper nesting (a stack overflow at ~10k levels), a huge array or
 * millions of keys (seconds in JSON.parse) is refused here. Returns the problem, or undefined.
 * Strings are skipped; JSON syntax itself is JSON.parse's job.
 */
export interface JsonShapeLimits {
  maxDepth: number;
  maxArray: number;
  maxMembers: number;
}

export function checkJsonShape(text: string, limits: JsonShapeLimits): string | undefined {
  const arrays: boolean[] = []; // per open container: is it an array
  const commas: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // string: skip to the closing quote, over escapes
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x7b || c === 0x5b) {
      if (arrays.length === limits.maxDepth) return `JSON nested deeper than ${limits.maxDepth} levels`;
      arrays.push(c === 0x5b);
      commas.push(0);
    } else if (c === 0x7d || c === 0x5d) {
      arrays.pop();
      commas.pop();
    } else if (c === 0x2c && arrays.length > 0) {
      const n = ++commas[commas.length - 1];
      if (arrays[arrays.length - 1] ? n >= limits.maxArray : n >= limits.maxMembers) {
        return arrays[arrays.length - 1] ? `a JSON array with more than ${limits.maxArray} elements` : `a JSON object with more than ${limits.maxMembers} members`;
      }
    }
  }
  return undefined;
}
