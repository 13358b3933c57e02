/**
 * A linear pre-scan of header JSON before JSON.parse: a valid safetensors header nests three deep
 * (root object, tensor object, shape / offsets array) and its arrays are short, so deeper nesting
 * (a stack overflow in JSON.parse at ~10k levels) or a huge array (memory) is refused here.
 * Returns the problem, or undefined. Strings are skipped; JSON syntax itself is JSON.parse's job.
 */
export function checkJsonShape(text: string, maxArray: number, maxDepth = 3): string | undefined {
  const commas: number[] = []; // per open container: commas so far, or -1 for an object
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // string: skip to the closing quote, over escapes
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x7b || c === 0x5b) {
      if (commas.length === maxDepth) return `JSON nested deeper than ${maxDepth} levels`;
      commas.push(c === 0x5b ? 0 : -1);
    } else if (c === 0x7d || c === 0x5d) {
      commas.pop();
    } else if (c === 0x2c && commas.length > 0 && commas[commas.length - 1] >= 0) {
      if (++commas[commas.length - 1] >= maxArray) return `a JSON array with more than ${maxArray} elements`;
    }
  }
  return undefined;
}
