// A closed-loop HTTP client for the soak modes: `concurrency` keep-alive connections, each sending its
// next request when the previous answer has been read, until a request count, a time limit or a stop
// condition (e.g. the server's RSS past a cap). Bodies can differ per request (distinct filters,
// rotating pairs) or be streamed (multipart bodies larger than the client should hold).
import http from 'node:http';

export interface Shot {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** A whole body (sent with Content-Length)... */
  body?: string | Buffer;
  /** ...or one written in pieces, honouring backpressure; end() is called after it resolves. */
  stream?: (req: http.ClientRequest) => Promise<void>;
}

export interface ClosedLoopOptions {
  base: string;
  concurrency: number;
  /** Stop after this many requests have been sent (default: no count limit). */
  total?: number;
  /** Stop sending after this many seconds (default: no time limit). */
  seconds?: number;
  /** Checked before each request; true stops sending. */
  shouldStop?: () => boolean;
  /** The i-th request (0-based, in sending order). */
  next: (i: number) => Shot;
  /** Per-request timeout (default 120 s). */
  timeoutMs?: number;
  /** Called after each answer (or failure) of the i-th request. */
  onDone?: (ms: number, status: number | string, i: number) => void;
}

export interface ClosedLoopResult {
  sent: number;
  /** Answers and failures by HTTP status, or by error code for requests that got no answer. */
  outcomes: Record<string, number>;
  /** The first answer body (clipped) seen for each non-2xx status. */
  examples: Record<string, string>;
  seconds: number;
  latenciesMs: number[];
  /** Why sending stopped: 'count', 'time' or 'condition'. */
  stoppedBy: 'count' | 'time' | 'condition';
}

export async function closedLoop(opts: ClosedLoopOptions): Promise<ClosedLoopResult> {
  const url = new URL(opts.base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const outcomes: Record<string, number> = {};
  const examples: Record<string, string> = {};
  const latenciesMs: number[] = [];
  const t0 = performance.now();
  const deadline = opts.seconds === undefined ? Infinity : t0 + opts.seconds * 1000;
  let sent = 0;
  let stoppedBy: ClosedLoopResult['stoppedBy'] = 'count';

  const one = (shot: Shot, i: number) =>
    new Promise<void>((resolve) => {
      const started = performance.now();
      let settled = false;
      const finish = (outcome: number | string, body?: string) => {
        if (settled) return;
        settled = true;
        const ms = performance.now() - started;
        const key = String(outcome);
        outcomes[key] = (outcomes[key] ?? 0) + 1;
        if (body !== undefined && examples[key] === undefined && !(typeof outcome === 'number' && outcome < 300)) examples[key] = clip(body);
        latenciesMs.push(ms);
        opts.onDone?.(ms, outcome, i);
        resolve();
      };
      const headers: Record<string, string | number> = { 'content-type': 'application/json', ...shot.headers };
      if (shot.body !== undefined) headers['content-length'] = Buffer.byteLength(shot.body);
      const req = http.request({ host: url.hostname, port: url.port, method: shot.method ?? 'POST', path: shot.path, headers, agent, timeout: opts.timeoutMs ?? 120_000 }, (res) => {
        const status = res.statusCode ?? 0;
        // Keep only the start of a refusal to show what the server said; drain the rest.
        let head = '';
        res.on('data', (d: Buffer) => {
          if (status >= 300 && head.length < 400) head += d.toString('utf8', 0, Math.min(d.length, 400));
        });
        res.on('end', () => finish(status, head));
        res.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      req.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
      if (shot.stream) {
        shot.stream(req).then(
          () => req.end(),
          () => req.destroy(),
        );
      } else req.end(shot.body);
    });

  const worker = async () => {
    for (;;) {
      if (opts.total !== undefined && sent >= opts.total) return;
      if (performance.now() >= deadline) {
        stoppedBy = 'time';
        return;
      }
      if (opts.shouldStop?.()) {
        stoppedBy = 'condition';
        return;
      }
      const i = sent++;
      await one(opts.next(i), i);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  agent.destroy();
  return { sent, outcomes, examples, seconds: (performance.now() - t0) / 1000, latenciesMs, stoppedBy };
}

/** Writes a chunk and waits for the socket to drain when the kernel buffer is full; false if the request failed. */
export function writeWithBackpressure(req: http.ClientRequest, chunk: Buffer | string): Promise<boolean> {
  if (req.destroyed) return Promise.resolve(false);
  if (req.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      req.off('drain', onDrain);
      req.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    req.once('drain', onDrain);
    req.once('close', onClose);
  });
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function clip(s: string): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > 200 ? `${one.slice(0, 200)}…` : one;
}
