// `npm run soak -- --mode <mode>`: one soak per finding of the hardening review (issue 9), each against
// the real server as a separate process, printing its RSS over time (and, for probe, the liveness
// latency). Nothing here asserts: the figures go into docs/hardening.md, before and after the fixes.
//
//   pairs       pair scoring, 1,000 valid (user, item) pairs per request, N requests at concurrency 16
//   cold-users  1,000 unknown users per request with k=120 at concurrency 4 (peak RSS)
//   filters     a stream of distinct filters, each a long accepted-value list (the filter cache)
//   multipart   multipart bodies near / over the body limit (is the whole body buffered?)
//   no-read     raw sockets that pipeline predict requests and never read an answer
//   idle        many idle sockets; does /health/ping from a new connection still answer?
//   probe       /health/ping every 10 ms from its own connection while worst-case legal requests run
//               (1,000 unknown users, 1,000-value filters) on the 10k × 50k synthetic catalog
//
// --server-dir DIR runs the server of another built checkout (e.g. the commit before the fixes), so
// "before" and "after" are measured by the same client. Every mode stops early when the server's RSS
// passes --max-rss-mb or after --max-seconds, and says so.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadArtifact } from '../src/model-format/artifact.js';
import { ensureDemoModel } from '../src/model-format/demo.js';
import { PACKAGE_ROOT } from '../src/util/paths.js';
import { closedLoop, percentile, writeWithBackpressure, type ClosedLoopResult, type Shot } from './lib/closed-loop.js';
import { startPinger } from './lib/probe.js';
import { watchRss } from './lib/rss-watch.js';
import { openFileLimit, raiseOpenFileLimit, startServerProcess, type ServerProcess } from './lib/server-process.js';
import { BENCH_MODEL, ensureSyntheticModel, genreOf, userId } from './lib/synthetic.js';

export const MODES = ['pairs', 'cold-users', 'filters', 'multipart', 'no-read', 'idle', 'probe'] as const;
export type Mode = (typeof MODES)[number];

/** The options the modes read (soak.ts merges them into its own). Defaults depend on the mode, so none here. */
export const MODE_OPTIONS = {
  mode: { type: 'string' },
  'server-dir': { type: 'string' },
  requests: { type: 'string' },
  concurrency: { type: 'string' },
  'max-rss-mb': { type: 'string' },
  'max-seconds': { type: 'string' },
  'print-every': { type: 'string' },
  env: { type: 'string', multiple: true },
  'heap-mb': { type: 'string' },
  users: { type: 'string' },
  k: { type: 'string' },
  pairs: { type: 'string' },
  'filter-values': { type: 'string' },
  'value-length': { type: 'string' },
  'body-mb': { type: 'string' },
  'part-mb': { type: 'string' },
  legal: { type: 'boolean' },
  sockets: { type: 'string' },
  pipeline: { type: 'string' },
  'server-nofile': { type: 'string' },
  kinds: { type: 'string' },
  'ping-interval-ms': { type: 'string' },
} as const;

export type ModeArgs = { [K in keyof typeof MODE_OPTIONS]?: (typeof MODE_OPTIONS)[K] extends { multiple: true } ? string[] : (typeof MODE_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string } & {
  catalog?: string;
  workers?: string;
  'log-level'?: string;
};

const line = (s = '') => process.stdout.write(`${s}\n`);
const load = () => os.loadavg()[0].toFixed(2);
const mb = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : String(x));
const workDir = path.join(os.tmpdir(), 'recserve-bench');
const PREDICT = '/api/v1.0/predictions';

export function isMode(m: string): m is Mode {
  return (MODES as readonly string[]).includes(m);
}

export async function runSoakMode(mode: Mode, args: ModeArgs): Promise<void> {
  mkdirSync(workDir, { recursive: true });
  const run = new ModeRun(mode, args);
  switch (mode) {
    case 'pairs':
      return run.pairs();
    case 'cold-users':
      return run.coldUsers();
    case 'filters':
      return run.filters();
    case 'multipart':
      return run.multipart();
    case 'no-read':
      return run.noRead();
    case 'idle':
      return run.idle();
    case 'probe':
      return run.probe();
  }
}

class ModeRun {
  private server: ServerProcess | null = null;
  /** The server's RSS right after /ready, before this mode sent anything. */
  private readyRssMb = NaN;
  private readonly serverDir: string | undefined;
  private readonly maxRssMb: number;

  constructor(
    private readonly mode: Mode,
    private readonly args: ModeArgs,
  ) {
    this.serverDir = args['server-dir'] ? path.resolve(args['server-dir']) : undefined;
    this.maxRssMb = this.num('max-rss-mb', 3000);
  }

  private num(key: keyof ModeArgs, fallback: number): number {
    const v = this.args[key];
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${key} must be a number, got ${String(v)}`);
    return n;
  }

  /** --max-seconds, or the mode's own bound; Infinity when neither. */
  private maxSeconds(fallback = Infinity): number {
    return this.num('max-seconds', fallback);
  }

  // ---- the server --------------------------------------------------------------------------------

  private async start(model: 'demo' | 'synthetic', extra: { openFileLimit?: number } = {}): Promise<{ server: ServerProcess; modelDir: string }> {
    let modelDir: string;
    if (model === 'demo') modelDir = await ensureDemoModel(path.join(workDir, 'demo-model'));
    else {
      const spec = { ...BENCH_MODEL, items: this.num('catalog', BENCH_MODEL.items) };
      modelDir = await ensureSyntheticModel(path.join(workDir, `model-${spec.users}x${spec.items}x${spec.factors}-s${spec.seed}`), spec);
    }
    const dataDir = path.join(workDir, `soak-${this.mode}-data`);
    rmSync(dataDir, { recursive: true, force: true });
    const env: Record<string, string> = { LOG_LEVEL: this.args['log-level'] ?? 'warn' };
    if (this.args.workers !== undefined) env.RECSERVE_WORKERS = this.args.workers;
    for (const kv of this.args.env ?? []) {
      const eq = kv.indexOf('=');
      if (eq < 1) throw new Error(`--env wants NAME=value, got ${kv}`);
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    const heap = this.args['heap-mb'];
    const logFile = path.join(workDir, `soak-${this.mode}-server.log`);
    rmSync(logFile, { force: true });
    const server = await startServerProcess({
      modelDir,
      dataDir,
      env,
      logFile,
      serverDir: this.serverDir,
      nodeFlags: heap ? [`--max-old-space-size=${heap}`] : [],
      openFileLimit: extra.openFileLimit,
    });
    this.server = server;
    this.readyRssMb = server.rssMb();
    const cpu = cpuFlags();
    line(`soak --mode ${this.mode}: server ${describeCheckout(this.serverDir)}, pid ${server.pid}, model ${path.basename(modelDir)}; env ${JSON.stringify(env)}${heap ? `, heap ${heap} MB` : ''}`);
    line(`  node ${process.version}, ${os.availableParallelism?.() ?? os.cpus().length} cores (${cpu}), load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; stops at RSS > ${this.maxRssMb} MB; log ${logFile}`);
    return { server, modelDir };
  }

  private async stop(): Promise<void> {
    if (this.server) await this.server.stop();
    this.server = null;
  }

  private alive(): boolean {
    return this.server !== null && this.server.child.exitCode === null && this.server.child.signalCode === null;
  }

  /** Fails early when the first request of a mode is not what it should be (a wrong payload measures nothing). */
  private async expect(shot: Shot, statuses: number[]): Promise<void> {
    const res = await fetch(`${this.server!.base}${shot.path}`, { method: shot.method ?? 'POST', headers: { 'content-type': 'application/json', ...shot.headers }, body: shot.body as string });
    const text = await res.text();
    if (!statuses.includes(res.status)) throw new Error(`${shot.path} answered ${res.status} (wanted ${statuses.join(' or ')}): ${text.slice(0, 300)}`);
  }

  /** Drives a closed loop while the RSS watcher prints; stops on count, time, RSS cap or a dead server. */
  private async drive(opts: { concurrency: number; total?: number; seconds: number; next: (i: number) => Shot; timeoutMs?: number; onDone?: (ms: number, status: number | string, i: number) => void }): Promise<{ r: ClosedLoopResult; rss: ReturnType<typeof watchRss> }> {
    const server = this.server!;
    let done = 0;
    let ok = 0;
    const t0 = performance.now();
    const rss = watchRss({
      rssMb: () => server.rssMb(),
      note: () => `${done} answered (${ok} × 2xx), ${(done / ((performance.now() - t0) / 1000)).toFixed(0)} req/s, load ${load()}`,
      print: line,
      printEveryS: this.num('print-every', 5),
      capMb: this.maxRssMb,
    });
    const r = await closedLoop({
      base: server.base,
      concurrency: opts.concurrency,
      total: opts.total,
      seconds: Number.isFinite(opts.seconds) ? opts.seconds : undefined,
      next: opts.next,
      timeoutMs: opts.timeoutMs,
      shouldStop: () => rss.overCap || !this.alive(),
      onDone: (ms, status, i) => {
        done++;
        if (typeof status === 'number' && status < 300) ok++;
        opts.onDone?.(ms, status, i);
      },
    });
    rss.stop();
    return { r, rss };
  }

  private summary(extra: Record<string, unknown>, r: ClosedLoopResult | null, rss: ReturnType<typeof watchRss>): void {
    const end = this.alive() ? this.server!.rssMb() : NaN;
    const why = !this.alive() ? 'the server died' : rss.overCap ? `RSS passed ${this.maxRssMb} MB` : r === null || r.stoppedBy === 'time' ? 'time limit' : r.stoppedBy === 'count' ? 'all requests sent' : 'stopped';
    if (r) {
      const lat = [...r.latenciesMs].sort((a, b) => a - b);
      line(`requests: ${r.sent} sent in ${r.seconds.toFixed(1)} s; answers ${JSON.stringify(r.outcomes)}; latency p50 ${percentile(lat, 50).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms, max ${(lat[lat.length - 1] ?? NaN).toFixed(1)} ms`);
      for (const [k, v] of Object.entries(r.examples)) line(`  ${k}: ${v}`);
    }
    line(`RSS: ${mb(this.readyRssMb)} MB when ready, ${mb(rss.startMb)} MB at start, peak ${mb(rss.peakMb)} MB, ${Number.isNaN(end) ? 'server gone' : `${mb(end)} MB`} at end; stopped: ${why}`);
    if (!this.alive() && this.server) line(`server exit: code ${this.server.child.exitCode}, signal ${this.server.child.signalCode}`);
    line(
      JSON.stringify({
        mode: this.mode,
        server: describeCheckout(this.serverDir),
        ...extra,
        sent: r?.sent ?? null,
        outcomes: r?.outcomes ?? null,
        seconds: r ? Number(r.seconds.toFixed(1)) : null,
        stopped: why,
        rss_mb_ready: Math.round(this.readyRssMb),
        rss_mb_start: Math.round(rss.startMb),
        rss_mb_peak: Math.round(rss.peakMb),
        rss_mb_end: Number.isNaN(end) ? null : Math.round(end),
        rss_mb_over_time: rss.samples.map((s) => Math.round(s.rssMb)),
        load1_end: Number(load()),
      }),
    );
  }

  private async guarded(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } finally {
      await this.stop();
    }
  }

  // ---- modes ---------------------------------------------------------------------------------------

  /** Pair scoring: every request scores `pairs` valid (user, item) pairs, walking over all of them. */
  pairs(): Promise<void> {
    return this.guarded(async () => {
      const { modelDir } = await this.start('demo');
      const art = await loadArtifact(modelDir);
      const perRequest = this.num('pairs', 1000);
      const total = this.num('requests', 100_000);
      const concurrency = this.num('concurrency', 16);
      const all = art.userIds.length * art.itemIds.length;
      // Precomputed bodies, cycled: the server remembers each prediction by its own puid, not by body.
      const bodies = Array.from({ length: Math.min(1000, Math.ceil(all / perRequest)) }, (_, b) => {
        const pairs = Array.from({ length: perRequest }, (_, j) => {
          const p = (b * perRequest + j) % all;
          return [art.userIds[Math.floor(p / art.itemIds.length)], art.itemIds[p % art.itemIds.length]];
        });
        return JSON.stringify({ jsonData: { pairs } });
      });
      const next = (i: number): Shot => ({ path: PREDICT, body: bodies[i % bodies.length] });
      await this.expect(next(0), [200]);
      line(`pairs: ${total} requests of ${perRequest} known (user, item) pairs (${art.userIds.length} users × ${art.itemIds.length} items), concurrency ${concurrency}, ${(bodies[0].length / 1024).toFixed(1)} KB per body`);
      const { r, rss } = await this.drive({ concurrency, total, seconds: this.maxSeconds(), next });
      this.summary({ pairs_per_request: perRequest, concurrency }, r, rss);
    });
  }

  /** Many unknown users per request with a large k: the cold-start path and the size of its answer. */
  coldUsers(): Promise<void> {
    return this.guarded(async () => {
      await this.start('demo');
      const users = this.num('users', 1000);
      const k = this.num('k', 120);
      const total = this.num('requests', 200);
      const concurrency = this.num('concurrency', 4);
      const next = (i: number): Shot => ({ path: PREDICT, body: JSON.stringify({ jsonData: { users: Array.from({ length: users }, (_, j) => `cold-${i}-${j}`), k } }) });
      await this.expect(next(-1), [200]);
      line(`cold-users: ${total} requests of ${users} unknown users with k=${k}, concurrency ${concurrency}`);
      const { r, rss } = await this.drive({ concurrency, total, seconds: this.maxSeconds(), next });
      this.summary({ users_per_request: users, k, concurrency }, r, rss);
    });
  }

  /** A stream of distinct filter texts: each a `filter-values` long list of accepted genres (one real). */
  filters(): Promise<void> {
    return this.guarded(async () => {
      const { modelDir } = await this.start('demo');
      const art = await loadArtifact(modelDir);
      const genre = String(art.catalog?.[0]?.genre ?? 'Comedy');
      const values = this.num('filter-values', 1000);
      const valueLength = this.num('value-length', 200);
      const total = this.num('requests', 3000);
      const concurrency = this.num('concurrency', 4);
      const user = art.userIds[0];
      const pad = 'x'.repeat(valueLength);
      const next = (i: number): Shot => {
        const accepted = [genre];
        for (let j = 1; j < values; j++) accepted.push(`${i}-${j}-${pad}`.slice(0, valueLength));
        return { path: PREDICT, body: JSON.stringify({ jsonData: { user_id: user, k: 10, filter: { genre: accepted } } }) };
      };
      const first = next(-1);
      await this.expect(first, [200]);
      line(`filters: ${total} requests, each a distinct filter of ${values} accepted values of ${valueLength} characters (${((first.body as string).length / 1024).toFixed(0)} KB), concurrency ${concurrency}`);
      const { r, rss } = await this.drive({ concurrency, total, seconds: this.maxSeconds(), next });
      this.summary({ filter_values: values, value_length: valueLength, concurrency }, r, rss);
    });
  }

  /**
   * Multipart bodies of `body-mb`: a legal jsonData field, then file parts of `part-mb` each (each under
   * the per-part limit, the whole far over the body limit); or with --legal, one jsonData field padded
   * with JSON whitespace to body-mb (a valid message, if the body limit allows it).
   */
  multipart(): Promise<void> {
    return this.guarded(async () => {
      const { modelDir } = await this.start('demo');
      const art = await loadArtifact(modelDir);
      const bodyBytes = Math.round(this.num('body-mb', 200) * 1024 * 1024);
      const partBytes = Math.round(this.num('part-mb', 4) * 1024 * 1024);
      const total = this.num('requests', 10);
      const concurrency = this.num('concurrency', 2);
      const legal = this.args.legal === true;
      const boundary = '----recserve-soak-boundary';
      const message = JSON.stringify({ user_id: art.userIds[0], k: 10 });
      const fieldHead = `--${boundary}\r\nContent-Disposition: form-data; name="jsonData"\r\n\r\n`;
      const fileHead = (n: number) => `\r\n--${boundary}\r\nContent-Disposition: form-data; name="pad${n}"; filename="pad${n}.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
      const tail = `\r\n--${boundary}--\r\n`;
      // The layout: [fieldHead, message, padding?] then file parts until bodyBytes.
      const layout: { head: string; fill: number; fillByte: number }[] = [];
      let size = fieldHead.length + message.length + tail.length;
      if (legal) layout.push({ head: '', fill: Math.max(0, bodyBytes - size), fillByte: 0x20 });
      else
        for (let n = 0; size < bodyBytes; n++) {
          const fill = Math.min(partBytes, Math.max(1, bodyBytes - size - fileHead(n).length));
          layout.push({ head: fileHead(n), fill, fillByte: 0x61 });
          size += fileHead(n).length + fill;
        }
      const contentLength = fieldHead.length + message.length + layout.reduce((a, p) => a + p.head.length + p.fill, 0) + tail.length;
      const chunks = new Map<number, Buffer>();
      const chunkOf = (byte: number) => chunks.get(byte) ?? chunks.set(byte, Buffer.alloc(256 * 1024, byte)).get(byte)!;
      const next = (): Shot => ({
        path: PREDICT,
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(contentLength) },
        stream: async (req) => {
          if (!(await writeWithBackpressure(req, fieldHead + message))) throw new Error('closed');
          for (const p of layout) {
            if (p.head && !(await writeWithBackpressure(req, p.head))) throw new Error('closed');
            const chunk = chunkOf(p.fillByte);
            for (let left = p.fill; left > 0; left -= chunk.length) {
              if (!(await writeWithBackpressure(req, left >= chunk.length ? chunk : chunk.subarray(0, left)))) throw new Error('closed');
            }
          }
          await writeWithBackpressure(req, tail);
        },
      });
      line(
        `multipart: ${total} bodies of ${(contentLength / 1024 / 1024).toFixed(1)} MB (${legal ? 'one jsonData field padded with JSON whitespace' : `a jsonData field and ${layout.length} file parts of ≤ ${(partBytes / 1024 / 1024).toFixed(1)} MB`}), concurrency ${concurrency}`,
      );
      const { r, rss } = await this.drive({ concurrency, total, seconds: this.maxSeconds(), next, timeoutMs: 300_000 });
      this.summary({ body_mb: Number((contentLength / 1024 / 1024).toFixed(1)), parts: legal ? 1 : layout.length + 1, legal, concurrency }, r, rss);
    });
  }

  /** Raw sockets that each write `pipeline` predict requests at once and never read an answer. */
  noRead(): Promise<void> {
    return this.guarded(async () => {
      const { server, modelDir } = await this.start('demo');
      const art = await loadArtifact(modelDir);
      const sockets = this.num('sockets', 8);
      const perSocket = this.num('pipeline', 20_000);
      const k = this.num('k', 120);
      const users = this.num('users', 1);
      const seconds = this.maxSeconds(30);
      const jsonData = users === 1 ? { user_id: art.userIds[0], k } : { users: art.userIds.slice(0, users), k };
      const message = JSON.stringify({ jsonData });
      await this.expect({ path: PREDICT, body: message }, [200]);
      const request = `POST ${PREDICT} HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`;
      line(`no-read: ${sockets} sockets × ${perSocket} pipelined predicts (${users} user(s), k=${k}; ${request.length} bytes each), never read; watching ${seconds} s`);
      const conns: net.Socket[] = [];
      let closedByServer = 0;
      for (let c = 0; c < sockets; c++) {
        const s = net.connect(server.ports.http, '127.0.0.1');
        s.on('error', () => undefined);
        s.on('close', () => closedByServer++);
        s.pause(); // never read: the answers pile up in the kernel, then in the server
        s.write(request.repeat(perSocket));
        conns.push(s);
      }
      let lastPing = 'not yet';
      const rss = watchRss({ rssMb: () => server.rssMb(), note: () => `ping from a new connection: ${lastPing}; sockets closed by the server ${closedByServer}; load ${load()}`, print: line, printEveryS: this.num('print-every', 5), capMb: this.maxRssMb });
      const pings: { ok: number; failed: number; ms: number[] } = { ok: 0, failed: 0, ms: [] };
      const t0 = performance.now();
      while ((performance.now() - t0) / 1000 < seconds && !rss.overCap && this.alive()) {
        const p = await pingOnce(`${server.base}/health/ping`, 5000);
        if (p.ok) {
          pings.ok++;
          pings.ms.push(p.ms);
        } else pings.failed++;
        lastPing = p.ok ? `${p.ms.toFixed(0)} ms` : `failed (${p.error})`;
        await sleep(1000);
      }
      rss.stop();
      for (const s of conns) s.destroy();
      await sleep(3000);
      const after = this.alive() ? server.rssMb() : NaN;
      pings.ms.sort((a, b) => a - b);
      line(`pings from new connections during the flood: ${pings.ok} answered (max ${mb(pings.ms[pings.ms.length - 1] ?? NaN)} ms), ${pings.failed} failed; RSS ${mb(after)} MB 3 s after the flood sockets closed`);
      this.summary({ sockets, pipelined_per_socket: perSocket, k, pings_ok: pings.ok, pings_failed: pings.failed, rss_mb_after_close: Number.isNaN(after) ? null : Math.round(after) }, null, rss);
    });
  }

  /** Opens `sockets` idle connections (none sends a byte) and pings /health/ping from a new one each second. */
  idle(): Promise<void> {
    return this.guarded(async () => {
      const want = this.num('sockets', 21_000);
      // The server keeps the limit it would have had (this process's, before raising it for the
      // client side) unless --server-nofile says otherwise.
      const inherited = openFileLimit(process.pid);
      const serverNofile = this.num('server-nofile', inherited);
      const own = raiseOpenFileLimit(process.pid, want + 1024);
      const { server } = await this.start('demo', { openFileLimit: serverNofile });
      const serverLimit = openFileLimit(server.pid);
      const seconds = this.maxSeconds(30);
      line(`idle: ${want} idle sockets; open-file limit: this client ${own}, the server ${serverLimit}; then /health/ping from a new connection every second for ${seconds} s`);
      const base = server.openFds();
      const conns: net.Socket[] = [];
      const connectErrors: Record<string, number> = {};
      let closedByServer = 0;
      const t0 = performance.now();
      // Connect in waves so the listen backlog (511) is not what limits the count.
      for (let i = 0; i < want; ) {
        const wave = Math.min(256, want - i);
        await Promise.all(
          Array.from(
            { length: wave },
            () =>
              new Promise<void>((resolve) => {
                let s: net.Socket;
                try {
                  s = net.connect(server.ports.http, '127.0.0.1');
                } catch (e) {
                  const code = (e as NodeJS.ErrnoException).code ?? 'throw';
                  connectErrors[code] = (connectErrors[code] ?? 0) + 1;
                  return resolve();
                }
                const timer = setTimeout(() => s.destroy(Object.assign(new Error('connect timeout'), { code: 'CONNECT_TIMEOUT' })), 10_000);
                s.once('connect', () => {
                  clearTimeout(timer);
                  conns.push(s);
                  s.once('close', () => closedByServer++);
                  resolve();
                });
                s.once('error', (e: NodeJS.ErrnoException) => {
                  clearTimeout(timer);
                  if (!conns.includes(s)) {
                    connectErrors[e.code ?? e.message] = (connectErrors[e.code ?? e.message] ?? 0) + 1;
                    resolve();
                  }
                });
              }),
          ),
        );
        i += wave;
        if (!this.alive()) break;
      }
      const connectS = (performance.now() - t0) / 1000;
      await sleep(1000); // let the server accept what the kernel has queued
      const fdsAfterConnect = this.alive() ? server.openFds() : { total: NaN, sockets: NaN };
      line(`connected ${conns.length} of ${want} in ${connectS.toFixed(1)} s (errors ${JSON.stringify(connectErrors)}); server sockets ${fdsAfterConnect.sockets - base.sockets} more than before, ${fdsAfterConnect.total} fds open`);
      let lastPing = 'not yet';
      const rss = watchRss({
        rssMb: () => server.rssMb(),
        note: () => {
          const fds = this.alive() ? server.openFds() : { total: NaN, sockets: NaN };
          return `idle sockets still open ${conns.length - closedByServer}; server fds ${fds.total} (sockets ${fds.sockets}); ping from a new connection: ${lastPing}`;
        },
        print: line,
        printEveryS: this.num('print-every', 5),
        capMb: this.maxRssMb,
      });
      const pings: { ok: number; failed: number; ms: number[]; errors: Record<string, number> } = { ok: 0, failed: 0, ms: [], errors: {} };
      const t1 = performance.now();
      while ((performance.now() - t1) / 1000 < seconds && this.alive()) {
        const p = await pingOnce(`${server.base}/health/ping`, 3000);
        if (p.ok) {
          pings.ok++;
          pings.ms.push(p.ms);
        } else {
          pings.failed++;
          pings.errors[p.error] = (pings.errors[p.error] ?? 0) + 1;
        }
        lastPing = p.ok ? `${p.ms.toFixed(0)} ms` : `failed (${p.error})`;
        await sleep(1000);
      }
      rss.stop();
      const stillOpen = conns.length - closedByServer;
      for (const s of conns) s.destroy();
      pings.ms.sort((a, b) => a - b);
      line(`pings: ${pings.ok} answered (p50 ${mb(percentile(pings.ms, 50))} ms, max ${mb(pings.ms[pings.ms.length - 1] ?? NaN)} ms), ${pings.failed} failed ${JSON.stringify(pings.errors)}; idle sockets the server had closed by the end: ${closedByServer} of ${conns.length}`);
      this.summary(
        {
          sockets_wanted: want,
          sockets_connected: conns.length,
          server_sockets_accepted: fdsAfterConnect.sockets - base.sockets,
          sockets_open_at_end: stillOpen,
          connect_errors: connectErrors,
          client_fd_limit: own,
          server_fd_limit: serverLimit,
          pings_ok: pings.ok,
          pings_failed: pings.failed,
          ping_errors: pings.errors,
        },
        null,
        rss,
      );
    });
  }

  /**
   * Worst-case legal requests on the synthetic catalog (kinds: cold = 1,000 unknown users; filter = a
   * distinct 1,000-value filter for a known user; both = the two in one request) while a separate
   * connection GETs /health/ping every 10 ms.
   */
  probe(): Promise<void> {
    return this.guarded(async () => {
      const { server } = await this.start('synthetic');
      const items = this.num('catalog', BENCH_MODEL.items);
      const users = this.num('users', 1000);
      const values = this.num('filter-values', 1000);
      const k = this.num('k', 10);
      const concurrency = this.num('concurrency', 2);
      const seconds = this.maxSeconds(60);
      const interval = this.num('ping-interval-ms', 10);
      const kinds = (this.args.kinds ?? 'cold,filter').split(',');
      for (const kind of kinds) if (!['cold', 'filter', 'both'].includes(kind)) throw new Error(`--kinds: unknown kind ${kind} (cold, filter, both)`);
      const filter = (i: number) => ({ genre: [genreOf(0, BENCH_MODEL.genres), ...Array.from({ length: values - 1 }, (_, j) => `g-${i}-${j}`)] });
      const cold = (i: number) => Array.from({ length: users }, (_, j) => `visitor-${i}-${j}`);
      const kindOf = (i: number) => kinds[((i % kinds.length) + kinds.length) % kinds.length];
      const next = (i: number): Shot => {
        const kind = kindOf(i);
        const known = userId(Math.abs(i) % BENCH_MODEL.users);
        const jsonData = kind === 'cold' ? { users: cold(i), k } : kind === 'filter' ? { user_id: known, k, filter: filter(i) } : { users: cold(i), k, filter: filter(i) };
        return { path: PREDICT, body: JSON.stringify({ jsonData }) };
      };
      // Idle baseline first: what a ping costs with nothing else running.
      const idlePinger = startPinger(`${server.base}/health/ping`, interval);
      await sleep(3000);
      const idle = await idlePinger.stop();
      for (const kind of new Set(kinds)) await this.expect(next(kinds.indexOf(kind) - kinds.length), [200]);
      line(`probe: ${items}-item catalog; load: ${kinds.join(' / ')} in turn (${users} unknown users per cold request, ${values} accepted values per filter, distinct each time; k=${k}), concurrency ${concurrency}, ${seconds} s; /health/ping every ${interval} ms on its own connection`);
      line(`idle ping: p50 ${idle.p50Ms.toFixed(2)} ms, p99 ${idle.p99Ms.toFixed(2)} ms, max ${idle.maxMs.toFixed(2)} ms (${idle.count} pings)`);
      const byKind: Record<string, number[]> = {};
      const pinger = startPinger(`${server.base}/health/ping`, interval);
      const { r, rss } = await this.drive({ concurrency, seconds, next, timeoutMs: 300_000, onDone: (ms, _status, i) => (byKind[kindOf(i)] ??= []).push(ms) });
      const ping = await pinger.stop();
      const perKind = Object.fromEntries(
        Object.entries(byKind).map(([kind, a]) => {
          a.sort((x, y) => x - y);
          return [kind, { requests: a.length, p50_ms: round2(percentile(a, 50)), max_ms: round2(a[a.length - 1]) }];
        }),
      );
      line(
        `ping during the load: p50 ${ping.p50Ms.toFixed(1)} ms, p99 ${ping.p99Ms.toFixed(1)} ms, max ${ping.maxMs.toFixed(1)} ms; ${ping.count} answered, ${ping.failures} failed, ${ping.over50Ms} over 50 ms; ` +
          `p99 counting the pings a ${interval} ms probe could not send while waiting: ${ping.p99CorrectedMs.toFixed(1)} ms`,
      );
      line(`requests by kind: ${JSON.stringify(perKind)}`);
      this.summary(
        {
          catalog: items,
          kinds,
          users_per_request: users,
          filter_values: values,
          concurrency,
          ping_idle_p99_ms: round2(idle.p99Ms),
          ping_p50_ms: round2(ping.p50Ms),
          ping_p99_ms: round2(ping.p99Ms),
          ping_max_ms: round2(ping.maxMs),
          ping_p99_corrected_ms: round2(ping.p99CorrectedMs),
          pings: ping.count,
          ping_failures: ping.failures,
          pings_over_50ms: ping.over50Ms,
          requests_by_kind: perKind,
        },
        r,
        rss,
      );
    });
  }
}

function round2(x: number): number | null {
  return Number.isFinite(x) ? Number(x.toFixed(2)) : null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One GET on a new connection (no keep-alive agent): ok and its latency, or why not. */
function pingOnce(url: string, timeoutMs: number): Promise<{ ok: true; ms: number } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? { ok: true, ms: performance.now() - t0 } : { ok: false, error: `HTTP ${res.statusCode}` }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: `no answer in ${timeoutMs} ms` })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, error: e.code ?? e.message }));
  });
}

/** "DIR at <commit>" (and whether its work tree has uncommitted changes), for the record. */
export function describeCheckout(dir: string | undefined): string {
  const d = dir ?? PACKAGE_ROOT;
  try {
    const commit = execFileSync('git', ['-C', d, 'log', '-1', '--format=%h'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', d, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return `${dir ?? 'this checkout'} at ${commit}${dirty ? ' + uncommitted changes' : ''}`;
  } catch {
    return dir ?? 'this checkout';
  }
}

/** The CPU's vector flags (the figures depend on them). */
export function cpuFlags(): string {
  try {
    const flags = /^flags\s*:\s*(.*)$/m.exec(execFileSync('cat', ['/proc/cpuinfo'], { encoding: 'utf8' }))?.[1] ?? '';
    return flags
      .split(' ')
      .filter((f) => /avx|sse4_2|fma/.test(f))
      .join(' ');
  } catch {
    return 'flags unknown';
  }
}
