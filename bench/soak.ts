// `npm run soak`: holds 64 connections for 10 minutes against the real server, mixing predict and
// feedback (1 in 10), and reports errors (must be 0), p99 over time and RSS over time. The load runs
// in consecutive slices (default 30 s) so every slice has its own percentiles and RSS sample.
//
//   node dist/bench/soak.js [--minutes 10] [--connections 64] [--slice 30] [--catalog 50000] [--workers N]
//        [--server-dir DIR]
//
// `--mode pairs|cold-users|filters|multipart|no-read|idle|probe` runs one of the hardening soaks
// instead (bench/soak-modes.ts, figures in docs/hardening.md); `--mode mixed` is the default above.
import { mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { haveWrk, httpLoad, type LoadRequest } from './lib/http-load.js';
import { startServerProcess } from './lib/server-process.js';
import { BENCH_MODEL, ensureSyntheticModel, itemId, userId } from './lib/synthetic.js';
import { isMode, MODE_OPTIONS, MODES, runSoakMode } from './soak-modes.js';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    slice: { type: 'string', default: '30' },
    catalog: { type: 'string' },
    workers: { type: 'string' },
    tool: { type: 'string' },
    'log-level': { type: 'string' },
    ...MODE_OPTIONS,
  },
});

const mode = args.mode ?? 'mixed';
if (mode !== 'mixed') {
  if (!isMode(mode)) throw new Error(`--mode ${mode}: unknown (mixed, ${MODES.join(', ')})`);
  await runSoakMode(mode, args);
} else await mixedSoak();

async function mixedSoak() {
  const spec = { ...BENCH_MODEL, items: Number(args.catalog ?? BENCH_MODEL.items) };
  const totalS = Number(args.minutes) * 60;
  const sliceS = Math.min(Number(args.slice), totalS);
  const connections = Number(args.connections);
  const workDir = path.join(os.tmpdir(), 'recserve-bench');
  const modelDir = path.join(workDir, `model-${spec.users}x${spec.items}x${spec.factors}-s${spec.seed}`);
  const dataDir = path.join(workDir, 'soak-data');
  mkdirSync(workDir, { recursive: true });
  rmSync(dataDir, { recursive: true, force: true }); // a fresh interaction store each soak
  const line = (s = '') => process.stdout.write(`${s}\n`);
  const load = () => os.loadavg()[0].toFixed(2);

  await ensureSyntheticModel(modelDir, spec);
  const env: Record<string, string> = { LOG_LEVEL: args['log-level'] ?? 'info' };
  if (args.workers !== undefined) env.RECSERVE_WORKERS = args.workers;
  const serverDir = args['server-dir'] ? path.resolve(args['server-dir']) : undefined;
  const server = await startServerProcess({ modelDir, dataDir, env, logFile: path.join(workDir, 'soak-server.log'), serverDir });
  const tool = (args.tool as 'wrk' | 'autocannon' | undefined) ?? (haveWrk() ? 'wrk' : 'autocannon');

  // 9 predictions, then 1 feedback naming one of the items (a click), cycling over 1,000 users.
  const requests: LoadRequest[] = [];
  for (let i = 0; i < 1000; i++) {
    const u = userId((i * 7919) % spec.users);
    if (i % 10 === 9) {
      requests.push({ path: '/api/v1.0/feedback', body: JSON.stringify({ request: { jsonData: { user_id: u, k: 10 } }, truth: { jsonData: { item_id: itemId((i * 31) % spec.items) } }, reward: 1 }) });
    } else {
      requests.push({ path: '/api/v1.0/predictions', body: JSON.stringify({ jsonData: { user_id: u, k: 10 } }) });
    }
  }

  try {
    // Both kinds must work before the soak means anything.
    for (const r of [requests[0], requests[9]]) {
      const res = await fetch(`${server.base}${r.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: r.body });
      if (res.status !== 200) throw new Error(`${r.path} answered ${res.status}: ${await res.text()}`);
    }
    line(`soak: ${connections} connections for ${args.minutes} min in ${sliceS} s slices (${tool}), 1 feedback per 10 requests; server pid ${server.pid}; load ${load()}`);
    line('| t (s) | req/s | p50 ms | p99 ms | max ms | errors | RSS MB | requests so far | load |');
    line('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    const rssStart = server.rssMb();
    const slices: { t: number; rps: number; p99Ms: number; errors: number; rssMb: number; requests: number }[] = [];
    let total = 0;
    let errors = 0;
    let rssAt1M: number | null = null;
    for (let t = 0; t < totalS; t += sliceS) {
      const l = load();
      const r = await httpLoad({ base: server.base, connections, seconds: Math.min(sliceS, totalS - t), requests, tool });
      total += r.requests;
      errors += r.errors + r.non2xx;
      const rss = server.rssMb();
      if (rssAt1M === null && total >= 1_000_000) rssAt1M = rss;
      slices.push({ t: t + sliceS, rps: r.rps, p99Ms: r.p99Ms, errors: r.errors + r.non2xx, rssMb: rss, requests: total });
      line(`| ${t + sliceS} | ${r.rps.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.maxMs.toFixed(1)} | ${r.errors + r.non2xx} | ${rss.toFixed(0)} | ${total} | ${l} |`);
    }
    const rssEnd = server.rssMb();
    line();
    line(`errors: ${errors} of ${total} requests${errors === 0 ? '' : '  <-- must be 0'}`);
    line(`RSS: ${rssStart.toFixed(0)} MB at start, ${rssEnd.toFixed(0)} MB at end (${(rssEnd - rssStart).toFixed(0)} MB)${rssAt1M !== null ? `, ${rssAt1M.toFixed(0)} MB at 1M requests` : ''}`);
    await server.stop();
    line(
      JSON.stringify({
        errors,
        requests: total,
        rss_mb_start: Math.round(rssStart),
        rss_mb_end: Math.round(rssEnd),
        rss_mb_at_1m: rssAt1M === null ? null : Math.round(rssAt1M),
        p99_ms_over_time: slices.map((s) => Number(s.p99Ms.toFixed(2))),
        rss_mb_over_time: slices.map((s) => Math.round(s.rssMb)),
        rps_over_time: slices.map((s) => Math.round(s.rps)),
        load1_end: Number(load()),
      }),
    );
    if (errors > 0) process.exitCode = 1;
  } catch (e) {
    await server.stop();
    throw e;
  }
}
