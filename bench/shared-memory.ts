// Predict throughput with and without the shared prediction memory (issue 10), in the same run: the
// real server as a process, on a PostgreSQL store both times, RECSERVE_SHARED_PREDICTIONS=false vs the
// default (on). Rounds alternate (off, on, off, on, …) so drift of a shared machine hits both; the
// medians are compared. After each "on" round the rows written to the shared table are counted.
// Prints, never asserts.
//
//   node dist/bench/shared-memory.js [--pg postgres://…] [--catalog 50000] [--duration 10] [--connections 64]
//        [--rounds 2] [--tool wrk|autocannon]
import os from 'node:os';
import path from 'node:path';
import { mkdirSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { haveWrk, httpLoad, type LoadResult } from './lib/http-load.js';
import { startServerProcess } from './lib/server-process.js';
import { BENCH_MODEL, ensureSyntheticModel, userId } from './lib/synthetic.js';

const { values: args } = parseArgs({
  options: {
    pg: { type: 'string', default: process.env.RECSERVE_TEST_PG_URL ?? 'postgres://recserve:recserve@127.0.0.1:5432/recserve_test' },
    catalog: { type: 'string', default: String(BENCH_MODEL.items) },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '3' },
    tool: { type: 'string' },
  },
});

const line = (s = '') => process.stdout.write(`${s}\n`);
const load = () => os.loadavg()[0].toFixed(2);
const items = Number(args.catalog);
const spec = { ...BENCH_MODEL, items };
const seconds = Number(args.duration);
const connections = Number(args.connections);
const rounds = Number(args.rounds);
const tool = (args.tool as 'wrk' | 'autocannon' | undefined) ?? (haveWrk() ? 'wrk' : 'autocannon');
const workDir = path.join(os.tmpdir(), 'recserve-bench');
const modelDir = path.join(workDir, `model-${spec.users}x${items}x${spec.factors}-s${spec.seed}`);
mkdirSync(workDir, { recursive: true });
await ensureSyntheticModel(modelDir, spec);

const schema = `rs_bench_shared_${process.pid}`;
const storeUrl = `${args.pg}${args.pg!.includes('?') ? '&' : '?'}schema=${schema}`;
const admin = new pg.Client({ connectionString: args.pg });
await admin.connect();
const requests = Array.from({ length: 1000 }, (_, i) => ({ path: '/api/v1.0/predictions', body: JSON.stringify({ jsonData: { user_id: userId((i * 7919) % spec.users), k: 10 } }) }));

line(`recserve shared prediction memory bench: ${spec.users} users × ${items} items; REST ${tool}, ${connections} connections, ${seconds} s × ${rounds} rounds each; ${os.availableParallelism?.() ?? os.cpus().length} cores, node ${process.version}`);

async function round(shared: boolean): Promise<LoadResult & { rows: number }> {
  const dataDir = path.join(workDir, `data-shared-${shared}`);
  rmSync(dataDir, { recursive: true, force: true });
  const server = await startServerProcess({
    modelDir,
    dataDir,
    env: { LOG_LEVEL: 'warn', RECSERVE_STORE_URL: storeUrl, RECSERVE_SHARED_PREDICTIONS: String(shared) },
    logFile: path.join(workDir, `server-shared-${shared}.log`),
  });
  try {
    await httpLoad({ base: server.base, connections, seconds: Number(args.warmup), requests, tool });
    await new Promise((resolve) => setTimeout(resolve, 500)); // the warm-up's last flush, so the count is this round's
    const before = await countRows();
    const l = load();
    const r = await httpLoad({ base: server.base, connections, seconds, requests, tool });
    await new Promise((resolve) => setTimeout(resolve, 500)); // the last flush
    const rows = (await countRows()) - before;
    line(
      `  shared ${shared ? 'on ' : 'off'}: ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50Ms.toFixed(2)} p99 ${r.p99Ms.toFixed(2)} ms  errors ${r.errors + r.non2xx}` +
        `  rows written ${rows} of ${r.requests} answered  (load ${l})`,
    );
    return { ...r, rows };
  } finally {
    await server.stop();
  }
}

async function countRows(): Promise<number> {
  try {
    return Number((await admin.query(`SELECT COUNT(*) AS n FROM ${schema}.predictions`)).rows[0].n);
  } catch {
    return 0; // not migrated yet
  }
}

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const off: number[] = [];
const on: number[] = [];
try {
  for (let i = 0; i < rounds; i++) {
    off.push((await round(false)).rps);
    on.push((await round(true)).rps);
  }
  const mOff = median(off);
  const mOn = median(on);
  const change = ((mOn - mOff) / mOff) * 100;
  line(`median: off ${mOff.toFixed(0)} req/s, on ${mOn.toFixed(0)} req/s: ${change >= 0 ? '+' : ''}${change.toFixed(1)}% with the shared memory (goal ≥ −5%)`);
  line(JSON.stringify({ bench: 'shared-memory', items, connections, seconds, tool, offRps: off, onRps: on, changePct: Number(change.toFixed(2)) }));
} finally {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
  await admin.end();
}
