// `npm run bench:train`: seconds per epoch of the trainers on MovieLens 100K and on a synthetic set of
// one million interactions, and — when Debian's python3-torch is importable — a fastai-style PyTorch
// EmbeddingDotBias (bench/torch_embdotbias.py) on the same data in the same run, with the ratio.
//
//   node dist/bench/train.js [--data DIR] [--epochs N] [--skip-torch] [--torch-threads N]
//
// Single-threaded figures (one training at a time); the median epoch is reported (the first epoch
// includes JIT warm-up). Numbers are for this machine only; nothing is asserted.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { IdMap, readInteractions, type Interactions } from '../src/train/data.js';
import { inputOf, type TrainInput } from '../src/train/model.js';
import { gaussian, rng } from '../src/util/random.js';
import { fit, type Algo, type Params } from '../src/train/trainers.js';
import { defaultMl100kDir } from './lib/datasets.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.endsWith(`${path.sep}dist${path.sep}bench`) ? '../..' : '..');
const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const dataDir = path.resolve(arg('--data') ?? defaultMl100kDir(root));
const epochs = Number(arg('--epochs') ?? 4);
const torchThreads = Number(arg('--torch-threads') ?? 1);
const skipTorch = process.argv.includes('--skip-torch');

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** 1M ratings from a rank-10 model over 20k users × 4k items, popularity-skewed items. */
function synthetic(n = 1_000_000, nU = 20_000, nI = 4_000, rank = 10, seed = 11): Interactions {
  const rand = rng(seed);
  const normal = gaussian(rand);
  const P = Float32Array.from({ length: nU * rank }, () => 0.35 * normal());
  const Q = Float32Array.from({ length: nI * rank }, () => 0.35 * normal());
  const bi = Float32Array.from({ length: nI }, () => 0.5 * normal());
  const users = new Int32Array(n);
  const items = new Int32Array(n);
  const ratings = new Float32Array(n);
  const seen = new Set<number>();
  let k = 0;
  while (k < n) {
    const u = Math.floor(rand() * nU);
    const i = Math.floor(Math.pow(rand(), 2) * nI);
    const key = u * nI + i;
    if (seen.has(key)) continue;
    seen.add(key);
    let s = 3.6 + bi[i];
    for (let f = 0; f < rank; f++) s += P[u * rank + f] * Q[i * rank + f];
    users[k] = u;
    items[k] = i;
    ratings[k] = Math.min(5, Math.max(1, Math.round(s + 0.5 * normal())));
    k++;
  }
  return {
    users,
    items,
    ratings,
    timestamps: null,
    userIds: IdMap.from(Array.from({ length: nU }, (_, u) => String(u))),
    itemIds: IdMap.from(Array.from({ length: nI }, (_, i) => String(i))),
    explicit: true,
    source: 'synthetic-1M',
  };
}

interface Row {
  data: string;
  algo: string;
  config: string;
  perEpoch: number;
  unit: string;
}

function timeAlgo(name: string, data: TrainInput, algo: Algo, params: Params, label: string): Row {
  const times: number[] = [];
  const isBayes = algo === 'bayes';
  const p: Params = isBayes ? { ...params, burnIn: 0, samples: epochs } : { ...params, epochs };
  const binary = algo === 'wals' || algo === 'bpr' ? { ...data, values: new Float32Array(data.values.length).fill(1) } : data;
  fit(algo, binary, p, (r) => {
    times.push(r.seconds);
  });
  const perEpoch = median(times.length > 1 ? times.slice(1) : times);
  const row = { data: name, algo, config: label, perEpoch, unit: isBayes ? 's/sweep' : 's/epoch' };
  console.error(`  ${name.padEnd(12)} ${algo.padEnd(6)} ${label.padEnd(34)} ${perEpoch.toFixed(3)} ${row.unit}`);
  return row;
}

function torchAvailable(): boolean {
  if (skipTorch) return false;
  const r = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' });
  return r.status === 0;
}

function runTorch(tsv: string, torchEpochs: number): { perEpoch: number; validMse: number[]; raw: Record<string, unknown> } | null {
  const script = path.join(root, 'bench', 'torch_embdotbias.py');
  const r = spawnSync('/usr/bin/python3', [script, '--data', tsv, '--epochs', String(torchEpochs), '--threads', String(torchThreads)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    console.error(`  torch run failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return null;
  }
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { seconds_per_epoch: number[]; valid_mse: number[] };
  const s = out.seconds_per_epoch;
  return { perEpoch: median(s.length > 1 ? s.slice(1) : s), validMse: out.valid_mse, raw: out };
}

function writeTsv(d: Interactions): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'recserve-bench-'));
  const file = path.join(dir, 'ratings.tsv');
  const lines: string[] = new Array(d.users.length);
  for (let k = 0; k < d.users.length; k++) lines[k] = `${d.userIds.ids[d.users[k]]}\t${d.itemIds.ids[d.items[k]]}\t${d.ratings[k]}`;
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

const sets: { name: string; data: Interactions }[] = [];
if (existsSync(path.join(dataDir, 'u.data'))) sets.push({ name: 'ml-100k', data: await readInteractions(path.join(dataDir, 'u.data')) });
else console.error(`bench:train: no MovieLens 100K at ${dataDir}; synthetic data only`);
console.error('bench:train: generating 1M synthetic interactions…');
sets.push({ name: 'synthetic-1M', data: synthetic() });

const configs: [Algo, Params, string][] = [
  ['sgd', { factors: 100, lr: 0.005, reg: 0.02 }, 'biased SGD, 100 f (Surprise defaults)'],
  ['sgd', { factors: 50, lr: 0.005, reg: 0.02 }, 'biased SGD, 50 f'],
  ['als', { factors: 50, reg: 0.1 }, 'biased ALS-WR, 50 f, Cholesky'],
  ['wals', { factors: 64, reg: 10, alpha: 5 }, 'implicit ALS, 64 f, CG 3 steps'],
  ['wals', { factors: 128, reg: 10, alpha: 5 }, 'implicit ALS, 128 f, CG 3 steps'],
  ['bpr', { factors: 64, lr: 0.05, reg: 0.01 }, 'BPR, 64 f'],
  ['bayes', { factors: 10, implicit: 'both' }, 'Gibbs BMF+SVD++/flipped, 10 f'],
];

const rows: Row[] = [];
const torchRows: { data: string; perEpoch: number; validMse: number[]; ratio: number }[] = [];
const haveTorch = torchAvailable();
for (const s of sets) {
  console.error(`${s.name}: ${s.data.users.length} interactions, ${s.data.userIds.size} users, ${s.data.itemIds.size} items`);
  const input = inputOf(s.data);
  for (const [algo, params, label] of configs) rows.push(timeAlgo(s.name, input, algo, params, label));
  if (haveTorch) {
    const tsv = writeTsv(s.data);
    const t = runTorch(tsv, s.name === 'ml-100k' ? 5 : 2);
    if (t) {
      const ours = rows.find((r) => r.data === s.name && r.algo === 'sgd' && r.config.includes('50 f'))!;
      const ratio = t.perEpoch / ours.perEpoch;
      torchRows.push({ data: s.name, perEpoch: t.perEpoch, validMse: t.validMse, ratio });
      console.error(`  ${s.name.padEnd(12)} torch  ${'EmbeddingDotBias 50 f, Adam, bs 64'.padEnd(34)} ${t.perEpoch.toFixed(3)} s/epoch (valid MSE ${t.validMse.map((v) => v.toFixed(4)).join(' → ')})`);
    }
  }
}

console.log(`\nseconds per epoch (median of ${epochs} epochs after the first; one thread)\n`);
console.log(`${'data'.padEnd(13)}${'algo'.padEnd(7)}${'configuration'.padEnd(46)}per epoch`);
for (const r of rows) console.log(`${r.data.padEnd(13)}${r.algo.padEnd(7)}${r.config.padEnd(46)}${r.perEpoch.toFixed(3)} ${r.unit}`);
for (const t of torchRows) {
  console.log(`${t.data.padEnd(13)}${'torch'.padEnd(7)}${`EmbeddingDotBias 50 f, Adam, bs 64, ${torchThreads} thread`.padEnd(46)}${t.perEpoch.toFixed(3)} s/epoch  → PyTorch / recserve SGD (50 f) = ${t.ratio.toFixed(1)}×`);
}
if (!haveTorch) console.log('\n(PyTorch not available: /usr/bin/python3 -c "import torch" failed or --skip-torch)');
console.log(
  '\n' +
    JSON.stringify({
      per_epoch_seconds: Object.fromEntries(rows.map((r) => [`${r.data}/${r.algo}/${r.config}`, Number(r.perEpoch.toFixed(4))])),
      torch: torchRows.map((t) => ({ data: t.data, seconds_per_epoch: Number(t.perEpoch.toFixed(4)), valid_mse: t.validMse.map((v) => Number(v.toFixed(4))), ratio_vs_recserve_sgd50: Number(t.ratio.toFixed(2)) })),
    }),
);
