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
const COMMA = 0x2c;

/** Nesting depth and value count of JSON text, from one pass that stops as soon as either is over. */
export interface TextShape {
  depth: number;
  /** Array elements and object members, counted by their separators and openers (an upper bound). */
  values: number;
}

export function scanText(text: string, maxDepth = Infinity, maxValues = Infinity): TextShape {
  let depth = 0;
  let deepest = 0;
  let values = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++values > maxValues) break;
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > maxDepth) break;
      }
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    } else if (c === COMMA) {
      if (++values > maxValues) break;
    }
  }
  return { depth: deepest, values };
}

/** Deepest nesting of objects and arrays in JSON text (brackets inside strings do not count). */
export function textDepth(text: string, stopAbove = Infinity): number {
  return scanText(text, stopAbove).depth;
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

export function tooDeep(where: string, maxDepth: number): Error {
  return badData(`${where} is nested more than ${maxDepth} levels deep (limit RECSERVE_MAX_JSON_DEPTH=${maxDepth})`);
}

/** Refuses a parsed value nested deeper than maxDepth. */
export function checkDepth(value: unknown, maxDepth: number, where: string): void {
  if (valueDepth(value, maxDepth) > maxDepth) throw tooDeep(where, maxDepth);
}

/**
 * JSON.parse after a depth and size check, with a bad_data error naming `where` on failure. `prefix`
 * leads the message (Seldon's wrapper says "Can't find JSON in data" for a body that is not JSON).
 */
export function parseJsonText(text: string, where: string, maxDepth: number, prefix = '', maxValues = Infinity): unknown {
  const shape = scanText(text, maxDepth, maxValues);
  if (shape.depth > maxDepth) throw tooDeep(where, maxDepth);
  if (shape.values > maxValues) throw tooMany(where, maxValues);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw badData(`${prefix}${prefix ? ': ' : ''}the ${where} is not valid JSON (${(e as Error).message})`);
  }
}

function tooMany(where: string, maxValues: number): Error {
  return badData(`${where} holds more than ${maxValues} values (limit RECSERVE_MAX_JSON_VALUES=${maxValues})`);
}

/** Refuses a message holding more values than the limit (a decoded gRPC message: counted by wire fields). */
export function checkValueCount(count: number, maxValues: number, where: string): void {
  if (count > maxValues) throw tooMany(where, maxValues);
}
