// What every answer to a hostile request must look like, for REST and gRPC, and a raw HTTP sender that
// can put any header and any bytes on the wire (fetch refuses Expect, Content-Length games and the like).
import http from 'node:http';

/** Text that only an internal error puts in an answer: stack frames, Node internals, source or temp paths. */
const LEAK_PATTERNS: [string, RegExp][] = [
  ['stack frame', /\n\s*at \S/],
  ['stack frame', /\bat [\w$.<>]+ \((?:file:|node:|\/)/],
  ['node internals', /node:internal/],
  ['source location', /\.(?:ts|js|mjs|cjs):\d+/],
  ['file path', /(?:^|[\s"'(=:])\/(?:work|tmp|home|usr|app|mnt|var|opt|root)\//],
  ['error class', /\b(?:TypeError|RangeError|ReferenceError|InternalError|AggregateError)\b/],
  ['error class', /\bError: [^"]*\n/],
];

/** The first leak found in a text, or null. */
export function leakIn(text: string): string | null {
  for (const [name, re] of LEAK_PATTERNS) {
    const m = re.exec(text);
    if (m) return `${name} ${JSON.stringify(text.slice(Math.max(0, m.index - 20), m.index + 60))}`;
  }
  return null;
}

/** Errors quote at most ~200 characters of client input; allow the message around it. */
export const MAX_ERROR_TEXT = 1000;

export interface RawRequest {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  ms: number;
  /** Set when no answer arrived (connection reset, socket hang up, timeout). */
  error?: string;
}

/** One request over node:http; never rejects (a failure to answer is an answer with `error`). */
export function send(base: URL, agent: http.Agent, req: RawRequest, timeoutMs: number): Promise<RawAnswer> {
  const started = Date.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (a: Omit<RawAnswer, 'ms'>) => {
      if (done) return;
      done = true;
      resolve({ ...a, ms: Date.now() - started });
    };
    const headers: Record<string, string | number> = { ...(req.headers ?? {}) };
    if (req.body && !Object.keys(headers).some((h) => h.toLowerCase() === 'transfer-encoding')) headers['content-length'] = req.body.length;
    const r = http.request({ host: base.hostname, port: base.port, method: req.method, path: req.path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (e) => finish({ status: 0, headers: {}, body: Buffer.alloc(0), error: `response error: ${e.message}` }));
    });
    r.setTimeout(timeoutMs, () => {
      finish({ status: 0, headers: {}, body: Buffer.alloc(0), error: `no answer within ${timeoutMs} ms` });
      r.destroy();
    });
    // The server may answer (413, 400) and close before the whole body is written: keep that answer.
    r.on('error', (e) => setTimeout(() => finish({ status: 0, headers: {}, body: Buffer.alloc(0), error: `request error: ${(e as NodeJS.ErrnoException).code ?? e.message}` }), 50));
    r.end(req.body);
  });
}

/**
 * Every problem with one REST answer to a hostile request: no answer, a stall, a 5xx, an error body
 * that is not Seldon's, leaked internals, an error text that echoes too much input. Empty when fine.
 */
export function restProblems(a: RawAnswer, timeoutMs: number): string[] {
  if (a.error) return [a.error.startsWith('no answer') ? 'stall' : `no answer (${a.error})`];
  const problems: string[] = [];
  if (a.ms > timeoutMs) problems.push(`slow (${a.ms} ms)`);
  const text = a.body.toString('utf8');
  if (a.status >= 500) problems.push(`${a.status} ${seldonReason(text) ?? ''} ${JSON.stringify(clipText(seldonInfo(text) ?? text, 120))}`.trim());
  if (a.status < 200 || a.status >= 300) {
    const info = seldonInfo(text);
    if (info === null) problems.push(`${a.status} without a Seldon error body: ${JSON.stringify(clipText(text, 80))}`);
    else if (info.length > MAX_ERROR_TEXT) problems.push(`${a.status} error info of ${info.length} chars`);
  } else if (text.length === 0) {
    problems.push(`${a.status} with an empty body`);
  }
  // JSON escapes newlines: unescape them so a stack trace inside a string is seen as one.
  const leak = leakIn(text.replace(/\\n/g, '\n')) ?? leakIn(JSON.stringify(a.headers));
  if (leak) problems.push(`leak: ${leak}`);
  return problems;
}

/** info of a Seldon error body {"status":{"code":-1,"info","reason","status":1}}, or null if it is not one. */
export function seldonInfo(text: string): string | null {
  try {
    const s = JSON.parse(text)?.status;
    if (s?.code === -1 && s?.status === 1 && typeof s.info === 'string' && typeof s.reason === 'string') return s.info;
  } catch {
    // not JSON
  }
  return null;
}

function seldonReason(text: string): string | null {
  try {
    const r = JSON.parse(text)?.status?.reason;
    return typeof r === 'string' ? r : null;
  } catch {
    return null;
  }
}

export function clipText(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** gRPC codes a hostile request may get: anything else means a crash, a stall or an internal error. */
export const ALLOWED_GRPC_CODES = new Set([0 /* OK */, 3 /* INVALID_ARGUMENT */, 5 /* NOT_FOUND */, 8 /* RESOURCE_EXHAUSTED */, 12 /* UNIMPLEMENTED */]);
