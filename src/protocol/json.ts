// JSON nesting bounded before anything recurses. JSON.parse itself copes with deep input, but what
// follows it does not: the schema validator, the tag echo and JSON.stringify all recurse, and a
// 10,000-deep array overflows the stack there. So the text is scanned for its depth first (one pass,
// no allocation), and values that arrive already parsed (gRPC's JSON form) are walked iteratively.
import { badData } from '../errors.js';

const OPEN_OBJECT = 0x7b; // {
const OPEN_ARRAY = 0x5b; // [
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Deepest nesting of objects and arrays in JSON text (brackets inside strings do not count). */
export function textDepth(text: string, stopAbove = Infinity): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > stopAbove) return deepest;
      }
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return deepest;
}

/** Deepest nesting of arrays and objects in a parsed value, walked without recursion. */
export function valueDepth(value: unknown, stopAbove = Infinity): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    const depth = d + 1;
    if (depth > deepest) {
      deepest = depth;
      if (deepest > stopAbove) return deepest;
    }
    if (Array.isArray(v)) for (const x of v) stack.push([x, depth]);
    else for (const x of Object.values(v)) stack.push([x, depth]);
  }
  return deepest;
}

function tooDeep(where: string, maxDepth: number): Error {
  return badData(`${where} is nested more than ${maxDepth} levels deep (limit RECSERVE_MAX_JSON_DEPTH=${maxDepth})`);
}

/** Refuses a parsed value nested deeper than maxDepth. */
export function checkDepth(value: unknown, maxDepth: number, where: string): void {
  if (valueDepth(value, maxDepth) > maxDepth) throw tooDeep(where, maxDepth);
}

/**
 * JSON.parse after a depth check, with a bad_data error naming `where` on failure. `prefix` leads the
 * message (Seldon's wrapper says "Can't find JSON in data" for a body that is not JSON).
 */
export function parseJsonText(text: string, where: string, maxDepth: number, prefix = ''): unknown {
  if (textDepth(text, maxDepth) > maxDepth) throw tooDeep(where, maxDepth);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw badData(`${prefix}${prefix ? ': ' : ''}the ${where} is not valid JSON (${(e as Error).message})`);
  }
}
