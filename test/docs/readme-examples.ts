// The README's sample answers, kept true: every ```sh block that runs `curl` and is followed by a
// ```json block is an example; the example's command is run (with real curl, against a real demo
// server) and its answer compared with the json block. In write mode the json blocks are rewritten
// from the real answers, so `npm run docs:examples` regenerates them after a change.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Example {
  /** The shell command as written (continuation lines joined). */
  command: string;
  /** The answer the document shows, as written. */
  shown: string;
  /** Where the json block's body starts and ends in the document (character offsets). */
  answerStart: number;
  answerEnd: number;
  /** 1-based line of the command, for messages. */
  line: number;
}

const BLOCK = /```(sh|bash|json)\n([\s\S]*?)```/g;

/** Examples in document order. A ```sh block with several curl commands is not an example (ambiguous answer). */
export function findExamples(markdown: string): Example[] {
  const blocks = [...markdown.matchAll(BLOCK)].map((m) => ({ lang: m[1], body: m[2], start: m.index!, end: m.index! + m[0].length }));
  const out: Example[] = [];
  for (let b = 0; b + 1 < blocks.length; b++) {
    const cmd = blocks[b];
    const answer = blocks[b + 1];
    if (cmd.lang === 'json' || answer.lang !== 'json') continue;
    // Only whitespace between the two blocks: the json block is this command's answer.
    if (markdown.slice(cmd.end, answer.start).trim() !== '') continue;
    const lines = cmd.body.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    if (lines.length !== 1 || !lines[0].startsWith('curl ')) continue;
    const bodyStart = answer.start + '```json\n'.length;
    out.push({ command: lines[0], shown: answer.body, answerStart: bodyStart, answerEnd: answer.end - '```'.length, line: markdown.slice(0, cmd.start).split('\n').length + 1 });
  }
  return out;
}

export interface Ports {
  http: number;
  grpc?: number;
  metrics: number;
}

/**
 * Runs the command with the documented default ports pointed at the test server's; returns curl's
 * stdout. Asynchronous: the server under test runs in this process and must keep answering.
 */
export async function runExample(command: string, ports: Ports): Promise<string> {
  const local = command
    .replace(/localhost:9000|127\.0\.0\.1:9000/g, `127.0.0.1:${ports.http}`)
    .replace(/localhost:9500|127\.0\.0\.1:9500/g, `127.0.0.1:${ports.grpc ?? 9500}`)
    .replace(/localhost:6000|127\.0\.0\.1:6000/g, `127.0.0.1:${ports.metrics}`);
  return (await run('bash', ['-c', local], { encoding: 'utf8', timeout: 30_000, maxBuffer: 1 << 22 })).stdout;
}

/** Values that differ on every run (prediction ids) read as "…" on both sides. */
export function normalise(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'puid' || (k === 'id' && typeof v === 'string' && /^[0-9a-f-]{36}$/.test(v)) ? '…' : normalise(v)]));
  }
  return value;
}

/** Where two answers differ (numbers within a relative 1e-4, since CPUs round float32 differently), or null. */
export function difference(shown: unknown, actual: unknown, where = '$'): string | null {
  if (typeof shown === 'number' && typeof actual === 'number') {
    return Math.abs(shown - actual) <= 1e-4 * Math.max(1, Math.abs(shown), Math.abs(actual)) ? null : `${where}: shown ${shown}, got ${actual}`;
  }
  if (Array.isArray(shown) && Array.isArray(actual)) {
    if (shown.length !== actual.length) return `${where}: shown ${shown.length} elements, got ${actual.length}`;
    for (let i = 0; i < shown.length; i++) {
      const d = difference(shown[i], actual[i], `${where}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (shown && actual && typeof shown === 'object' && typeof actual === 'object' && !Array.isArray(shown) && !Array.isArray(actual)) {
    const keys = new Set([...Object.keys(shown), ...Object.keys(actual)]);
    for (const k of keys) {
      const d = difference((shown as Record<string, unknown>)[k], (actual as Record<string, unknown>)[k], `${where}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return Object.is(shown, actual) ? null : `${where}: shown ${JSON.stringify(shown)}, got ${JSON.stringify(actual)}`;
}

/** JSON on one line, with a space after each colon and comma (easier to read than JSON.stringify's). */
function flat(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(flat).join(', ')}]`;
  if (value && typeof value === 'object') return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${flat(v)}`).join(', ')}}`;
  return JSON.stringify(value);
}

/** JSON that keeps a value on one line when it fits in `width` and breaks larger objects and arrays one member per line. */
export function formatAnswer(value: unknown, width = 140, indent = '', prefix = 0): string {
  const line = flat(value);
  if (indent.length + prefix + line.length <= width || value === null || typeof value !== 'object') return line;
  const inner = indent + '  ';
  if (Array.isArray(value)) return `[\n${value.map((v) => inner + formatAnswer(v, width, inner)).join(',\n')}\n${indent}]`;
  const entries = Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatAnswer(v, width, inner, JSON.stringify(k).length + 2)}`);
  return `{\n${entries.join(',\n')}\n${indent}}`;
}

/** The document with each example's answer block replaced (offsets from findExamples on the same text). */
export function rewriteAnswers(markdown: string, examples: Example[], answers: string[]): string {
  let out = '';
  let at = 0;
  examples.forEach((ex, i) => {
    out += markdown.slice(at, ex.answerStart) + answers[i] + '\n';
    at = ex.answerEnd;
  });
  return out + markdown.slice(at);
}
