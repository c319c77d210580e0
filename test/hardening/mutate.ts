// A small seeded mutation library for the hardening fuzzers. A seed message (plain JSON) is mutated as a
// tree (type swaps, huge numbers, deep nesting, long strings, unicode, key deletion/insertion, …) and then,
// sometimes, as text or bytes (truncation, byte flips, NaN literals, duplicate keys). Every mutant carries
// a label naming what was done, so a failure can be read without replaying it; each index has its own
// generator (`mutatorFor(seed, index)`), so one mutant can be regenerated alone.
import { rng } from '../../src/util/random.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** JSON text spliced in verbatim by `serialize` (for what JSON.stringify cannot write: NaN, duplicate keys, deep nests). */
export class Raw {
  constructor(readonly text: string) {}
}
export type Tree = Json | Raw | Tree[] | { [k: string]: Tree };

/** JSON text of a tree; Raw nodes are written as they are. */
export function serialize(t: Tree | undefined): string {
  if (t instanceof Raw) return t.text;
  if (t === undefined) return 'null';
  if (Array.isArray(t)) return `[${t.map(serialize).join(',')}]`;
  if (t !== null && typeof t === 'object') {
    return `{${Object.entries(t)
      .map(([k, v]) => `${JSON.stringify(k)}:${serialize(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(t) ?? 'null';
}

/** The seeded generator of one mutant: the seed and index fully determine it. */
export function mutatorFor(seed: number, index: number): Mutator {
  return new Mutator((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

const HUGE_NUMBERS = [1e308, -1e308, -1, 0, -0, 2 ** 53 + 1, 4294967296, 400000000, 2 ** 31, -(2 ** 31) - 1, 1.5, 5e-324, 1e21, 123456789012345680000];
const NON_JSON_NUMBERS = ['NaN', 'Infinity', '-Infinity', '1e999', '-1e999', '01', '+1', '.5', '0x10', '1_000'];
const UNICODE = ['\ud800', '\udfff', '\udfff\ud800', '\u0000', 'a\u0000b', '\u202eevil\u202c', '\ufeff', '𝄞', 'ünïcødé', '\u0301\u0301\u0301', '\u2028\u2029', '\uffff', '%00', '<script>x</script>', '"; DROP TABLE interactions; --'];
const UNKNOWN_KEYS = ['jsondata', 'JSONDATA', 'extra', '', '__proto__', 'constructor', 'prototype', 'toString', 'user-id', 'k ', 'tftensor', 'customData', 'status'];
const NEST_DEPTHS = [33, 100, 1000, 10_000];

export class Mutator {
  private readonly r: () => number;
  /** What was done, in order. */
  readonly steps: string[] = [];

  constructor(seed: number) {
    this.r = rng(seed);
  }

  random(): number {
    return this.r();
  }
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  /** A long string: mostly small, sometimes up to 1 MB (callers keep the body under its limit). */
  longString(maxBytes = 1 << 20): string {
    const sizes = [257, 1025, 4097, 65_537, 200_000, 1 << 20].filter((s) => s <= maxBytes);
    const size = sizes.length ? this.pick(sizes) : maxBytes;
    return this.pick(['x', '7', 'é', '𝄞']).repeat(size / (this.chance(0.5) ? 1 : 2));
  }

  /** A value of a different kind than `v`. */
  typeSwap(v: Tree): Tree {
    const kinds = ['string', 'number', 'null', 'array', 'object', 'bool'].filter((k) => k !== kindOf(v));
    switch (this.pick(kinds)) {
      case 'string':
        return typeof v === 'number' ? String(v) : this.pick(['', '1', 'abc', 'null', '[]', '{}', 'true']);
      case 'number':
        return this.pick([0, 1, -1, 3.5, 1e308, 42]);
      case 'null':
        return null;
      case 'array':
        return this.pick<Tree>([[], [v], [null], [1, 'a', true], [[]]]);
      case 'object':
        return this.pick<Tree>([{}, { a: v }, { user_id: '1' }, { '': null }]);
      default:
        return this.chance(0.5);
    }
  }

  deepNest(maxBytes: number): Raw {
    const depth = this.pick(NEST_DEPTHS.filter((d) => d * 6 < maxBytes));
    return this.chance(0.5) ? new Raw('['.repeat(depth) + ']'.repeat(depth)) : new Raw('{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
  }

  manyKeys(): { [k: string]: Tree } {
    const n = this.pick([100, 1000, 10_000]);
    const o: { [k: string]: Tree } = {};
    for (let i = 0; i < n; i++) o[`k${i}`] = i % 3 === 0 ? String(i) : i;
    return o;
  }

  /** One tree mutation at a random node of `root`; returns the new tree (the input is not modified). */
  mutateTree(root: Tree, maxBytes: number): Tree {
    const nodes: { path: (string | number)[]; node: Tree }[] = [];
    collect(root, [], nodes, 0);
    const { path, node } = this.pick(nodes);
    const where = path.length ? path.join('.') : '<root>';
    const op = this.pick(['typeSwap', 'typeSwap', 'huge', 'nonJsonNumber', 'deepNest', 'longString', 'manyKeys', 'duplicateKey', 'unicode', 'deleteKey', 'insertKey', 'growArray', 'empty'] as const);
    let replacement: Tree | undefined;
    switch (op) {
      case 'typeSwap':
        replacement = this.typeSwap(node);
        break;
      case 'huge':
        replacement = this.pick(HUGE_NUMBERS);
        break;
      case 'nonJsonNumber':
        replacement = new Raw(this.pick(NON_JSON_NUMBERS));
        break;
      case 'deepNest':
        replacement = this.deepNest(maxBytes);
        break;
      case 'longString':
        replacement = this.longString(maxBytes / 2);
        break;
      case 'manyKeys':
        replacement = this.manyKeys();
        break;
      case 'unicode':
        replacement = typeof node === 'string' && this.chance(0.5) ? node + this.pick(UNICODE) : this.pick(UNICODE);
        break;
      case 'empty':
        replacement = this.pick<Tree>([[], {}, '']);
        break;
      case 'duplicateKey': {
        if (!isObject(node) || Object.keys(node).length === 0) {
          replacement = new Raw('{"user_id":"1","user_id":"2"}');
          break;
        }
        const key = this.pick(Object.keys(node));
        const body = Object.entries(node).map(([k, v]) => `${JSON.stringify(k)}:${serialize(v)}`);
        body.push(`${JSON.stringify(key)}:${serialize(this.typeSwap(node[key]))}`);
        replacement = new Raw(`{${body.join(',')}}`);
        break;
      }
      case 'deleteKey': {
        if (!isObject(node) || Object.keys(node).length === 0) {
          replacement = undefined;
          break;
        }
        const key = this.pick(Object.keys(node));
        const { [key]: _dropped, ...rest } = node;
        this.steps.push(`deleteKey ${where}.${key}`);
        return replace(root, path, rest);
      }
      case 'insertKey': {
        const key = this.pick(UNKNOWN_KEYS);
        const value = this.pick<Tree>([1, 'x', null, {}, [], true]);
        const target = isObject(node) ? node : { value: node };
        // A literal "__proto__" key must stay a key, not set the prototype: write it as Raw text.
        const body = Object.entries(target).map(([k, v]) => `${JSON.stringify(k)}:${serialize(v)}`);
        body.push(`${JSON.stringify(key)}:${serialize(value)}`);
        replacement = new Raw(`{${body.join(',')}}`);
        this.steps.push(`insertKey ${where}.${JSON.stringify(key)}`);
        return replace(root, path, replacement);
      }
      case 'growArray': {
        const n = this.pick([1000, 5000, 20_000]);
        const item = Array.isArray(node) && node.length ? node[0] : node;
        const one = serialize(item);
        const count = Math.max(1, Math.min(n, Math.floor(maxBytes / 2 / (one.length + 1))));
        replacement = new Raw(`[${Array.from({ length: count }, () => one).join(',')}]`);
        this.steps.push(`growArray ${where} ×${count}`);
        return replace(root, path, replacement);
      }
    }
    this.steps.push(`${op} ${where}${replacement instanceof Raw ? '' : ` → ${describe(replacement)}`}`);
    return replace(root, path, replacement);
  }

  /** One byte-level mutation of a text/body. */
  mutateBytes(bytes: Buffer): Buffer {
    const op = this.pick(['truncate', 'flip', 'flip', 'insert', 'delete', 'bomPrefix', 'trailingGarbage'] as const);
    switch (op) {
      case 'truncate': {
        const at = this.int(bytes.length + 1);
        this.steps.push(`truncate@${at}/${bytes.length}`);
        return bytes.subarray(0, at);
      }
      case 'flip': {
        const out = Buffer.from(bytes);
        const n = 1 + this.int(8);
        for (let i = 0; i < n && out.length; i++) out[this.int(out.length)] = this.int(256);
        this.steps.push(`flip×${n}`);
        return out;
      }
      case 'insert': {
        const at = this.int(bytes.length + 1);
        const junk = this.pick([Buffer.from([0]), Buffer.from([0xff, 0xfe]), Buffer.from('\\u'), Buffer.from('"'), Buffer.from('{'), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80])]);
        this.steps.push(`insert@${at} ${junk.toString('hex')}`);
        return Buffer.concat([bytes.subarray(0, at), junk, bytes.subarray(at)]);
      }
      case 'delete': {
        const at = this.int(bytes.length + 1);
        const n = 1 + this.int(4);
        this.steps.push(`delete@${at}×${n}`);
        return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + n)]);
      }
      case 'bomPrefix':
        this.steps.push('bomPrefix');
        return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes]);
      default:
        this.steps.push('trailingGarbage');
        return Buffer.concat([bytes, Buffer.from(this.pick([' x', '}', ']]', '\u0000', ',{}']))]);
    }
  }

  /**
   * A mutant of `seed`: 1–3 tree mutations, then (sometimes) a byte mutation of the text; the text is at
   * most `maxBytes` characters (a tree mutation that would exceed it is undone).
   */
  mutant(seed: Tree, maxBytes: number, byteChance = 0.25): Buffer {
    let bytes: Buffer = Buffer.from(serialize(this.mutantTree(seed, maxBytes)), 'utf8');
    if (this.chance(byteChance)) bytes = this.mutateBytes(bytes);
    return bytes;
  }

  /** 1–3 tree mutations of `seed`, each kept only if the text stays within `maxBytes` characters. */
  mutantTree(seed: Tree, maxBytes: number): Tree {
    let tree: Tree = seed;
    const rounds = 1 + this.int(3);
    for (let i = 0; i < rounds; i++) {
      const next = this.mutateTree(tree, maxBytes);
      if (serialize(next).length <= maxBytes) tree = next;
      else this.steps.push('(over budget: undone)');
    }
    return tree;
  }

  label(): string {
    return this.steps.join('; ');
  }
}

function kindOf(v: Tree): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Raw) return 'raw';
  if (typeof v === 'boolean') return 'bool';
  return typeof v;
}

function isObject(v: Tree): v is { [k: string]: Tree } {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Raw);
}

function collect(t: Tree, path: (string | number)[], out: { path: (string | number)[]; node: Tree }[], depth: number): void {
  out.push({ path, node: t });
  if (depth > 8 || t instanceof Raw) return;
  if (Array.isArray(t)) t.slice(0, 8).forEach((x, i) => collect(x, [...path, i], out, depth + 1));
  else if (isObject(t)) for (const [k, v] of Object.entries(t)) collect(v, [...path, k], out, depth + 1);
}

/** `root` with the node at `path` replaced (undefined deletes it); copies only along the path. */
function replace(root: Tree, path: (string | number)[], value: Tree | undefined): Tree {
  if (path.length === 0) return value === undefined ? null : value;
  const [head, ...rest] = path;
  if (Array.isArray(root)) {
    const copy = [...root];
    const inner = replace(root[head as number], rest, value);
    if (value === undefined && rest.length === 0) copy.splice(head as number, 1);
    else copy[head as number] = inner;
    return copy;
  }
  const copy: { [k: string]: Tree } = { ...(root as { [k: string]: Tree }) };
  if (value === undefined && rest.length === 0) delete copy[head as string];
  else copy[head as string] = replace(copy[head as string], rest, value);
  return copy;
}

function describe(v: Tree | undefined): string {
  if (v === undefined) return '<deleted>';
  const s = serialize(v);
  return s.length > 40 ? `${s.slice(0, 30)}…(${s.length} chars)` : s;
}

/** A clipped, printable copy of a payload for failure reports. */
export function clipPayload(bytes: Buffer | string, max = 300): string {
  const s = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  return s.length > max ? `${JSON.stringify(s.slice(0, max))}…(${s.length} chars)` : JSON.stringify(s);
}
