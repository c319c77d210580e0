// `npm run bench`: serving throughput and latency of the real server (issue 6).
// Builds the synthetic model (10,000 users × 50,000 items × 64 factors, fixed seed), measures the raw
// in-process scoring cost, starts `recserve serve` as a separate process, drives REST (wrk, else
// autocannon) and gRPC (grpc-js) over loopback at 1, 8 and 64 connections, and prints a table and one
// JSON line. It never asserts: figures on a shared 2-core machine are noisy, so the load average is
// printed beside each figure.
//
//   node dist/bench/serve.js [--catalog 50000] [--duration 15] [--connections 1,8,64] [--workers N]
//        [--max-batch 64] [--max-delay-ms 2] [--tool wrk|autocannon] [--no-grpc] [--no-v2] [--cpu-prof DIR]
//        [--log-level info] [--warmup 3] [--quick] [--no-large] [--large-catalogs 50000,200000,1000000]
//        [--peer URL [--peer-path /api/v1.0/predictions] [--peer-body '{"jsonData":{"user_id":"{user}","k":10}}'] [--rounds 2]]
//
// After the serving figures it runs the large-catalog part (bench/lib/large-catalog.ts: float32 against
// exact int8 per catalog size, and a served 1M-item model); --quick is the short development run.
// --peer drives a second server (e.g. Seldon's Python wrapper) with the same wrk load in the same run,
// REST only, alternating recserve and the peer round by round, and prints both with their ratios.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PROTO_DIR } from '../src/util/paths.js';
import { grpcLoad, grpcReachable, seldonEncoder } from './lib/grpc-load.js';
import { haveWrk, httpLoad, type LoadResult } from './lib/http-load.js';
import { summariseProfile } from './lib/profile.js';
import { startProbes, type ProbeStats } from './lib/probe.js';
import { between, scrape } from './lib/prom.js';
import { formatRows, largeCatalogSummary, measureCatalog, measureServed, type CatalogRow, type ServedLargeCatalog } from './lib/large-catalog.js';
import { measureRaw } from './lib/raw.js';
import { startServerProcess } from './lib/server-process.js';
import { BENCH_MODEL, ensureSyntheticModel, userId } from './lib/synthetic.js';

const { values: args } = parseArgs({
  options: {
    catalog: { type: 'string', default: String(BENCH_MODEL.items) },
    users: { type: 'string', default: String(BENCH_MODEL.users) },
    duration: { type: 'string', default: '15' },
    connections: { type: 'string', default: '1,8,64' },
    workers: { type: 'string' },
    'max-batch': { type: 'string' },
    'max-delay-ms': { type: 'string' },
    tool: { type: 'string' },
    'no-grpc': { type: 'boolean', default: false },
    'no-v2': { type: 'boolean', default: false },
    'no-raw': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    warmup: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    'no-large': { type: 'boolean', default: false },
    'large-catalogs': { type: 'string' },
    peer: { type: 'string' },
    'peer-path': { type: 'string', default: '/api/v1.0/predictions' },
    'peer-body': { type: 'string', default: '{"jsonData":{"user_id":"{user}","k":10}}' },
    rounds: { type: 'string', default: '2' },
  },
});
const quick = args.quick!;
if (quick) {
  // The development run: a few seconds per level, the large catalogs without the 1M-item model.
  args.duration = args.duration === '15' ? '4' : args.duration;
  args.warmup = args.warmup === '3' ? '1' : args.warmup;
}

const items = Number(args.catalog);
const users = Number(args.users);
if (!(items >= 10 && items <= 1_000_000)) throw new Error('--catalog must be between 10 and 1,000,000 items');
const seconds = Number(args.duration);
const peer = args.peer ? new URL(args.peer) : null;
const rounds = peer ? Math.max(1, Number(args.rounds)) : 1;
const conns = args.connections!.split(',').map(Number);
// A run holds two batch × items float matrices inside ORT (64 × 1M = 256 MB each): shrink batches
// as the catalog grows past 250k items.
const maxBatch = args['max-batch'] ?? String(Math.max(8, Math.min(64, Math.floor((64 * 250_000) / items))));
const spec = { ...BENCH_MODEL, items, users };
const workDir = path.join(os.tmpdir(), 'recserve-bench');
const modelDir = path.join(workDir, `model-${users}x${items}x${spec.factors}-s${spec.seed}`);
mkdirSync(workDir, { recursive: true });

const load = () => os.loadavg()[0].toFixed(2);
const line = (s = '') => process.stdout.write(`${s}\n`);

line(`recserve bench: ${users} users × ${items} items × ${spec.factors} factors; ${os.availableParallelism?.() ?? os.cpus().length} cores, node ${process.version}, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
let t = performance.now();
await ensureSyntheticModel(modelDir, spec);
line(`model: ${modelDir} (${((performance.now() - t) / 1000).toFixed(1)} s)`);

let raw = { runMsBatch1: NaN, runMsPerUserBatch64: NaN, topkMsBatch1: NaN, topkMsPerUserBatch64: NaN };
if (!args['no-raw']) {
  const l = load();
  raw = await measureRaw(modelDir, { batch: 64 });
  line(
    `raw in-process (load ${l}): run batch 1 ${raw.runMsBatch1.toFixed(3)} ms; batch 64 ${raw.runMsPerUserBatch64.toFixed(4)} ms/user; ` +
      `with top-10 selection: ${raw.topkMsBatch1.toFixed(3)} ms, ${raw.topkMsPerUserBatch64.toFixed(4)} ms/user`,
  );
}

const env: Record<string, string> = { LOG_LEVEL: args['log-level']!, RECSERVE_MAX_BATCH_SIZE: maxBatch };
if (args.workers !== undefined) env.RECSERVE_WORKERS = args.workers;
if (args['max-delay-ms'] !== undefined) env.RECSERVE_MAX_BATCH_DELAY_MS = args['max-delay-ms'];
const profDir = args['cpu-prof'] ? path.resolve(args['cpu-prof']) : null;
if (profDir) {
  mkdirSync(profDir, { recursive: true });
  for (const f of readdirSync(profDir)) if (f.endsWith('.cpuprofile')) rmSync(path.join(profDir, f));
}
const server = await startServerProcess({
  modelDir,
  dataDir: path.join(workDir, 'data'),
  env,
  nodeFlags: profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
  logFile: path.join(workDir, 'server.log'),
});
line(`server: pid ${server.pid}, REST ${server.ports.http}, gRPC ${server.ports.grpc}; env ${JSON.stringify(env)}; log ${path.join(workDir, 'server.log')}`);

// Top-10 for 1,000 different users (seen items excluded, the default), cycled.
const requests = Array.from({ length: 1000 }, (_, i) => ({ path: '/api/v1.0/predictions', body: JSON.stringify({ jsonData: { user_id: userId((i * 7919) % users), k: 10 } }) }));
const base = server.base;
const metricsUrl = `http://127.0.0.1:${server.ports.metrics}/prometheus`;
const tool = (args.tool as 'wrk' | 'autocannon' | undefined) ?? (haveWrk() ? 'wrk' : 'autocannon');

interface Row extends LoadResult {
  transport: string;
  load: string;
  cpuPct: number;
  /** Server CPU (all threads) per answered request, ms: less sensitive to a busy machine than req/s. */
  cpuMsPerReq: number;
  /** Of which the main thread's (I/O and protocol). */
  mainMsPerReq: number;
  rssMb: number;
  meanBatch: number;
  meanQueueMs: number;
  workerUtil: number[];
  /** /health/ping, /ready and /prometheus answered meanwhile (every 100 ms). */
  probe: ProbeStats;
}
const rows: Row[] = [];
const peerRows: (LoadResult & { load: string })[] = [];

async function measure(transport: string, c: number, drive: () => Promise<LoadResult>): Promise<Row> {
  const l = load();
  const before = await scrape(metricsUrl);
  const cpu0 = server.cpuSeconds();
  const main0 = server.mainThreadCpuSeconds();
  const probes = startProbes([`${base}/health/ping`, `${base}/ready`, metricsUrl]);
  const r = await drive();
  const probe = await probes.stop();
  const cpu1 = server.cpuSeconds();
  const main1 = server.mainThreadCpuSeconds();
  const after = await scrape(metricsUrl);
  const b = between(before, after, r.seconds);
  const row: Row = { ...r, transport, load: l, cpuPct: ((cpu1 - cpu0) / r.seconds) * 100, cpuMsPerReq: ((cpu1 - cpu0) * 1000) / Math.max(1, r.requests), mainMsPerReq: ((main1 - main0) * 1000) / Math.max(1, r.requests), rssMb: server.rssMb(), ...b, probe };
  rows.push(row);
  line(
    `  ${transport.padEnd(5)} c=${String(c).padEnd(3)} ${row.rps.toFixed(0).padStart(6)} req/s  p50 ${row.p50Ms.toFixed(2)} p99 ${row.p99Ms.toFixed(2)} ms  ` +
      `errors ${row.errors + row.non2xx}  probes p50 ${row.probe.p50Ms.toFixed(1)} max ${row.probe.maxMs.toFixed(1)} ms  batch ${row.meanBatch.toFixed(1)}  server CPU ${row.cpuPct.toFixed(0)}%, client ${(row.clientCpuPct ?? NaN).toFixed(0)}% (${row.cpuMsPerReq.toFixed(3)} ms/req, main thread ${row.mainMsPerReq.toFixed(3)})  RSS ${row.rssMb.toFixed(0)} MB  (load ${l})`,
  );
  return row;
}

let stopped = false;
try {
  line(`warm-up: ${args.warmup} s of REST at 64 connections (${tool})`);
  await httpLoad({ base, connections: 64, seconds: Number(args.warmup), requests, tool });
  const rssAfterWarmup = server.rssMb();

  if (peer) {
    const peerRequests = Array.from({ length: 1000 }, (_, i) => ({ path: args['peer-path']!, body: args['peer-body']!.replaceAll('{user}', userId((i * 7919) % users)) }));
    const peerBase = peer.origin;
    const check = await fetch(`${peerBase}${peerRequests[0].path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: peerRequests[0].body });
    line(`peer ${peerBase}${peerRequests[0].path}: first answer ${check.status} ${(await check.text()).slice(0, 160)}`);
    await httpLoad({ base: peerBase, connections: 64, seconds: Number(args.warmup), requests: peerRequests, tool });
    line(`REST (${tool}) beside the peer, ${rounds} rounds of ${seconds / rounds} s per level, alternating:`);
    for (const c of conns) {
      for (let r = 0; r < rounds; r++) {
        await measure('rest', c, () => httpLoad({ base, connections: c, seconds: seconds / rounds, requests, tool }));
        const l = load();
        const p = await httpLoad({ base: peerBase, connections: c, seconds: seconds / rounds, requests: peerRequests, tool });
        peerRows.push({ ...p, load: l });
        line(`  peer  c=${String(c).padEnd(3)} ${p.rps.toFixed(0).padStart(6)} req/s  p50 ${p.p50Ms.toFixed(2)} p99 ${p.p99Ms.toFixed(2)} ms  errors ${p.errors + p.non2xx}  client ${(p.clientCpuPct ?? NaN).toFixed(0)}%  (load ${l})`);
      }
    }
  } else {
    line(`REST (${tool}), ${seconds} s per level:`);
    for (const c of conns) await measure('rest', c, () => httpLoad({ base, connections: c, seconds, requests, tool }));
  }

  // The same users through the Open Inference Protocol V2 (JSON infer on the same port).
  if (args['no-v2']) line('V2: skipped (--no-v2)');
  else {
    const index = (await (await fetch(`${base}/v2/repository/index`, { method: 'POST', body: '{}' })).json()) as { name: string; state: string }[];
    const model = index.find((m) => m.state === 'READY')?.name;
    if (!model) line('V2: skipped (no READY model in /v2/repository/index)');
    else {
      const v2Requests = Array.from({ length: 1000 }, (_, i) => ({
        path: `/v2/models/${model}/infer`,
        body: JSON.stringify({ inputs: [{ name: 'user_id', datatype: 'BYTES', shape: [1], data: [userId((i * 7919) % users)] }], parameters: { k: 10 } }),
      }));
      line(`V2 REST (${tool}), ${seconds} s per level:`);
      for (const c of conns) await measure('v2', c, () => httpLoad({ base, connections: c, seconds, requests: v2Requests, tool }));
    }
  }

  if (args['no-grpc']) line('gRPC: skipped (--no-grpc)');
  else {
    const encode = seldonEncoder(PROTO_DIR);
    const address = `127.0.0.1:${server.ports.grpc}`;
    if (typeof encode === 'string') line(`gRPC: skipped (${encode})`);
    else if (!(await grpcReachable(address))) line(`gRPC: skipped (nothing answers on ${address}; is the gRPC server built in?)`);
    else {
      const messages = Array.from({ length: 1000 }, (_, i) => encode({ user_id: userId((i * 7919) % users), k: 10 }));
      line(`gRPC (grpc-js client), ${seconds} s per level:`);
      for (const c of conns) await measure('grpc', c, () => grpcLoad({ address, connections: c, seconds, requests: messages }));
    }
  }
  const rssEnd = server.rssMb();
  const total = rows.reduce((a, r) => a + r.requests, 0);

  line();
  line('| transport | conns | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | mean batch | worker util | server CPU | client CPU | CPU ms/req | main ms/req | probe p50/max ms | RSS MB | load |');
  line('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|');
  for (const r of rows) {
    line(
      `| ${r.transport} | ${r.connections} | ${r.rps.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p90Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.maxMs.toFixed(1)} | ${r.errors + r.non2xx} | ` +
        `${r.meanBatch.toFixed(1)} | ${r.workerUtil.map((u) => `${(u * 100).toFixed(0)}%`).join(' ')} | ${r.cpuPct.toFixed(0)}% | ${(r.clientCpuPct ?? NaN).toFixed(0)}% | ${r.cpuMsPerReq.toFixed(3)} | ${r.mainMsPerReq.toFixed(3)} | ${r.probe.p50Ms.toFixed(1)} / ${r.probe.maxMs.toFixed(1)}${r.probe.failures ? ` (${r.probe.failures} failed)` : ''} | ${r.rssMb.toFixed(0)} | ${r.load} |`,
    );
  }
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const bound = (cores * 1000) / raw.runMsPerUserBatch64;
  const boundSel = (cores * 1000) / raw.topkMsPerUserBatch64;
  const best = rows.filter((r) => r.transport === 'rest').reduce((a, r) => Math.max(a, r.rps), 0);
  line();
  line(`raw batched bound on ${cores} cores: ${bound.toFixed(0)} users/s scoring only, ${boundSel.toFixed(0)} with top-k selection; best REST ${best.toFixed(0)} req/s = ${((best / boundSel) * 100).toFixed(0)}% of the latter`);
  line(`RSS: ${rssAfterWarmup.toFixed(0)} MB after warm-up, ${rssEnd.toFixed(0)} MB after ${total} more requests`);

  // With rounds, a level's figure is the mean over its rounds.
  const pick = (transport: string, c: number) => meanOf(rows.filter((r) => r.transport === transport && r.connections === c));
  const round = (x: number | undefined, d = 3) => (x === undefined || Number.isNaN(x) ? null : Number(x.toFixed(d)));
  const peerJson: Record<string, number | null> = {};
  if (peer) {
    line();
    line(`side by side with ${peer.origin}${args['peer-path']} (mean of ${rounds} alternating rounds per level):`);
    line('| conns | recserve req/s | peer req/s | ratio | recserve p50 ms | peer p50 ms | p50 ratio (peer/recserve) | recserve p99 ms | peer p99 ms |');
    line('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const c of conns) {
      const a = pick('rest', c);
      const b = meanOf(peerRows.filter((r) => r.connections === c));
      if (!a || !b) continue;
      line(`| ${c} | ${a.rps.toFixed(0)} | ${b.rps.toFixed(0)} | ${(a.rps / b.rps).toFixed(2)}× | ${a.p50Ms.toFixed(2)} | ${b.p50Ms.toFixed(2)} | ${(b.p50Ms / a.p50Ms).toFixed(2)}× | ${a.p99Ms.toFixed(2)} | ${b.p99Ms.toFixed(2)} |`);
      peerJson[`peer_rps_c${c}`] = round(b.rps, 0);
      peerJson[`peer_p50_ms_c${c}`] = round(b.p50Ms);
      peerJson[`peer_p99_ms_c${c}`] = round(b.p99Ms);
      peerJson[`rps_ratio_c${c}`] = round(a.rps / b.rps, 2);
    }
  }
  await stop();
  stopped = true;

  // Large catalogs: float32 against exact int8, in-process, and the served 1M-item model.
  let largeRows: CatalogRow[] = [];
  let served: ServedLargeCatalog | null = null;
  if (args['no-large']) line('large catalogs: skipped (--no-large)');
  else {
    const catalogs = (args['large-catalogs'] ?? (quick ? '50000,200000' : '50000,200000,1000000')).split(',').map(Number);
    line();
    line(`large catalogs (float32 against exact int8, in-process, alternating; load ${load()}):`);
    for (const n of catalogs) largeRows.push(await measureCatalog(n, { rounds: quick ? 3 : 6, perRound: quick ? 10 : 20, log: line }));
    for (const l of formatRows(largeRows)) line(l);
    if (catalogs.includes(1_000_000)) {
      served = await measureServed(1_000_000, { seconds: quick ? 4 : 10, tool });
      line(`served 1,000,000 items, REST at 1 connection: p50 ${served.p50Ms.toFixed(2)} ms, p99 ${served.p99Ms.toFixed(2)} ms, ${served.rps.toFixed(0)} req/s, errors ${served.errors}; server RSS ${served.rssMb.toFixed(0)} MB`);
    }
  }
  const large = largeRows.length > 0 ? largeCatalogSummary(largeRows, served) : {};
  const json = {
    rest_rps_c1: round(pick('rest', 1)?.rps, 0),
    rest_p50_ms_c1: round(pick('rest', 1)?.p50Ms),
    rest_rps_c8: round(pick('rest', 8)?.rps, 0),
    rest_rps_c64: round(pick('rest', 64)?.rps, 0),
    rest_p99_ms_c64: round(pick('rest', 64)?.p99Ms),
    grpc_rps_c64: round(pick('grpc', 64)?.rps, 0),
    v2_rps_c64: round(pick('v2', 64)?.rps, 0),
    raw_ms_per_user_batch64: round(raw.runMsPerUserBatch64, 4),
    int8_exact_share: large.int8_exact_share ?? null,
    rescored_fraction: large.rescored_fraction ?? null,
    p50_ms_1m_items: large.p50_ms_1m_items ?? null,
    rss_mb_1m_items: large.rss_mb_1m_items ?? null,
    cpu_flags: cpuFlags(),
    ...peerJson,
    // context, not targets
    rest_p99_ms_c1: round(pick('rest', 1)?.p99Ms),
    raw_ms_batch1: round(raw.runMsBatch1, 4),
    rss_mb: round(rssEnd, 0),
    ...Object.fromEntries(Object.entries(large).filter(([key]) => !(key in { int8_exact_share: 1, rescored_fraction: 1, p50_ms_1m_items: 1, rss_mb_1m_items: 1 }))),
    // context, not targets
    catalog: items,
    tool,
    load1_start: Number(rows[0]?.load ?? load()),
    load1_end: Number(load()),
    rss_mb_after_warmup: round(rssAfterWarmup, 0),
    requests: total,
    quick,
  };
  line(JSON.stringify(json));
} catch (e) {
  if (!stopped) await stop();
  throw e;
}

/** The mean of each load figure over rounds of one level; undefined when there are none. */
function meanOf<T extends LoadResult>(rs: T[]): T | undefined {
  if (rs.length <= 1) return rs[0];
  const mean = (f: (r: T) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
  return { ...rs[0], rps: mean((r) => r.rps), p50Ms: mean((r) => r.p50Ms), p90Ms: mean((r) => r.p90Ms), p99Ms: mean((r) => r.p99Ms), requests: rs.reduce((a, r) => a + r.requests, 0) };
}

/** The CPU's SIMD flags that decide which kernels onnxruntime runs (x86 /proc/cpuinfo). */
function cpuFlags(): string {
  try {
    const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1].trim().split(/\s+/) ?? [];
    return flags.filter((f) => /^(avx|avx2|fma|f16c|avx512(f|bw|vl|dq|_vnni|_bf16)|avx_vnni|amx_\w+)$/.test(f)).join(' ');
  } catch {
    return os.arch();
  }
}

async function stop() {
  await server.stop();
  if (profDir) {
    const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    for (const f of files) {
      line(`profile ${path.join(profDir, f)}:`);
      line(summariseProfile(path.join(profDir, f), 25));
    }
  }
}
