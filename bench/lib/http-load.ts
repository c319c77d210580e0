// REST load over loopback: wrk when installed (a C load generator takes less of the 2 cores from the
// server), otherwise autocannon in-process. Both cycle through the same list of request bodies.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';

export interface LoadResult {
  tool: string;
  connections: number;
  seconds: number;
  requests: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  non2xx: number;
  /** CPU the load generator itself used, as a share of one core (it competes for the same cores). */
  clientCpuPct?: number;
}

export interface LoadRequest {
  /** Path on the server, e.g. /api/v1.0/predictions. */
  path: string;
  /** JSON body, POSTed. */
  body: string;
}

export interface HttpLoadOptions {
  /** http://host:port */
  base: string;
  connections: number;
  seconds: number;
  /** POSTed in turn, round-robin. */
  requests: LoadRequest[];
  tool?: 'wrk' | 'autocannon';
}

export function haveWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (e) {
    // wrk --version exits 1 after printing its version
    return (e as { status?: number }).status === 1;
  }
}

export async function httpLoad(opts: HttpLoadOptions): Promise<LoadResult> {
  const tool = opts.tool ?? (haveWrk() ? 'wrk' : 'autocannon');
  return tool === 'wrk' ? wrk(opts) : cannon(opts);
}

async function wrk(opts: HttpLoadOptions): Promise<LoadResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-wrk-'));
  const script = path.join(dir, 'load.lua');
  const lua = [
    'local paths = {',
    ...opts.requests.map((r) => `  ${luaString(r.path)},`),
    '}',
    'local bodies = {',
    ...opts.requests.map((r) => `  ${luaString(r.body)},`),
    '}',
    'local headers = { ["Content-Type"] = "application/json" }',
    'local n = 0',
    'request = function()',
    '  n = n + 1',
    '  local j = (n % #bodies) + 1',
    '  return wrk.format("POST", paths[j], headers, bodies[j])',
    'end',
    // Count non-2xx answers (wrk only counts >= 400 as status errors).
    'local bad = 0',
    'response = function(status, headers, body) if status >= 300 then bad = bad + 1 end end',
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format("RESULT %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,',
    '    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,',
    '    e.connect + e.read + e.write + e.timeout, e.status))',
    'end',
  ].join('\n');
  writeFileSync(script, lua);
  // One wrk thread per core at most; a thread needs at least one connection.
  const threads = Math.max(1, Math.min(opts.connections, os.availableParallelism?.() ?? 2));
  const args = ['-t', String(threads), '-c', String(opts.connections), '-d', `${opts.seconds}s`, '--timeout', '10s', '-s', script, opts.base];
  try {
    // bash's `times` prints the CPU its children (wrk) used: user and system, on the second line.
    const out = await run('bash', ['-c', 'wrk "$@" && times', 'wrk', ...args]);
    const t = /\n(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(out.trimEnd());
    const clientCpu = t ? Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4]) : NaN;
    const m = /RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(out);
    if (!m) throw new Error(`could not read wrk's output:\n${out}`);
    const [requests, durUs, p50, p90, p99, max, errors, status] = m.slice(1).map(Number);
    const seconds = durUs / 1e6;
    return { tool: 'wrk', connections: opts.connections, seconds, requests, rps: requests / seconds, p50Ms: p50 / 1000, p90Ms: p90 / 1000, p99Ms: p99 / 1000, maxMs: max / 1000, errors, non2xx: status, clientCpuPct: (clientCpu / seconds) * 100 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function cannon(opts: HttpLoadOptions): Promise<LoadResult> {
  const cpu0 = process.cpuUsage();
  const r = await autocannon({
    url: opts.base,
    connections: opts.connections,
    duration: opts.seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: opts.requests.map((q) => ({ method: 'POST', path: q.path, body: q.body })),
  });
  return {
    tool: 'autocannon',
    connections: opts.connections,
    seconds: opts.seconds,
    requests: r.requests.total,
    rps: r.requests.total / opts.seconds,
    p50Ms: r.latency.p50,
    p90Ms: r.latency.p90,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    clientCpuPct: cpuPct(cpu0, opts.seconds),
  };
}

function luaString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited with ${code}:\n${out}`))));
  });
}

/** CPU used by this process since `from`, as a share of one core over `seconds`. */
export function cpuPct(from: NodeJS.CpuUsage, seconds: number): number {
  const d = process.cpuUsage(from);
  return ((d.user + d.system) / 1e6 / seconds) * 100;
}
