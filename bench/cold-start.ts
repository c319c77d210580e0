// `node dist/bench/cold-start.js`: how long one request for 1,000 unknown users blocks the event loop
// on a 50,000-item catalog (issue 9, finding 6), before and after the draw pool, and the same for a
// filter with 10,001 accepted values (row-by-row matching vs the filter index). Before = the old
// algorithm, run here as it was: one Thompson draw per catalog item per user on this thread (the
// bandit's fresh-draw path), and every catalog row matched against every filter value. After = the
// real Recommender.recommend with the bandit policy installed (pool computed on the draw worker).
// Prints figures, asserts nothing.
//
//   node dist/bench/cold-start.js [--items 50000] [--users 1000] [--k 10] [--repeat 5]
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ThompsonBandit } from '../src/feedback/bandit.js';
import type { Artifact } from '../src/model-format/artifact.js';
import { Recommender, type RecommendRequest } from '../src/model/recommender.js';
import type { Scorer } from '../src/model/scorer.js';
import { BENCH_MODEL, genreOf, itemId } from './lib/synthetic.js';

const { values: args } = parseArgs({
  options: {
    items: { type: 'string', default: String(BENCH_MODEL.items) },
    users: { type: 'string', default: '1000' },
    k: { type: 'string', default: '10' },
    repeat: { type: 'string', default: '5' },
  },
});
const nItems = Number(args.items);
const nUsers = Number(args.users);
const k = Number(args.k);
const repeat = Number(args.repeat);

// Cold-start users never reach the scorer.
const noScorer: Scorer = { nItems, topK: async () => [], scorePairs: async () => new Float32Array(0), close: async () => undefined };
const itemIds = Array.from({ length: nItems }, (_, i) => itemId(i));
const artifact = {
  dir: '(memory)',
  name: 'bench-cold-start',
  version: `synthetic-${nItems}`,
  userIds: [],
  itemIds,
  // tier "rare" (1 item in 1,000) is a filter whose items mostly lie past the pool's sorted prefixes.
  catalog: itemIds.map((_, i) => ({ genre: genreOf(i, BENCH_MODEL.genres), tier: i % 1000 === 17 ? 'rare' : 'common' })),
  popularity: Float64Array.from(itemIds, (_, i) => ((i * 2654435761) >>> 0) % 10_000),
  seen: null,
  ratingRange: null,
  factors: null,
  settings: {},
  metadata: {},
} as unknown as Artifact;

const users = Array.from({ length: nUsers }, (_, u) => `visitor-${u}`);
const manyValues = ['g3', ...Array.from({ length: 10_000 }, (_, j) => `not-a-genre-${j}`)];

/**
 * Wall time of fn and the longest gap between ticks of a 1 ms interval timer while it ran: what a
 * /health/ping arriving during the request would wait (a timer cannot fire while the loop is blocked).
 * monitorEventLoopDelay's max is printed beside it.
 */
async function blocked(fn: () => unknown): Promise<{ ms: number; loopMaxMs: number; histogramMaxMs: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let last = performance.now();
  let worstGap = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    worstGap = Math.max(worstGap, now - last);
    last = now;
  }, 1);
  await new Promise((r) => setTimeout(r, 20));
  h.reset();
  await new Promise((r) => setTimeout(r, 5)); // the first sample after a reset is not recorded
  worstGap = 0;
  last = performance.now();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 5));
  clearInterval(tick);
  h.disable();
  return { ms, loopMaxMs: worstGap, histogramMaxMs: h.max / 1e6 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function measure(label: string, fn: () => unknown, times = repeat) {
  const runs: { ms: number; loopMaxMs: number; histogramMaxMs: number }[] = [];
  for (let r = 0; r < times; r++) runs.push(await blocked(fn));
  const ms = median(runs.map((x) => x.ms));
  const loop = median(runs.map((x) => x.loopMaxMs));
  const hist = median(runs.map((x) => x.histogramMaxMs));
  console.log(`${label.padEnd(58)} ${ms.toFixed(1).padStart(9)} ms   longest timer gap ${loop.toFixed(1).padStart(9)} ms   (monitorEventLoopDelay max ${hist.toFixed(1)} ms; median of ${times})`);
  return { ms, loopMaxMs: loop };
}

/** The old filter definition: every row against every value. */
function rowByRowMask(filter: Record<string, string[]>): Uint8Array {
  const catalog = artifact.catalog!;
  const mask = new Uint8Array(catalog.length);
  catalog.forEach((row, i) => {
    mask[i] = Object.entries(filter).every(([f, want]) => want.some((w) => String(row[f]) === String(w))) ? 1 : 0;
  });
  return mask;
}

const bandit = new ThompsonBandit({ seed: 7 });
let policy!: ReturnType<ThompsonBandit['policyFor']>;
const rec = new Recommender(artifact, noScorer, {
  learning: (r) => {
    policy = bandit.policyFor(r);
    return { coldStart: policy, explorer: policy };
  },
});
let t0 = performance.now();
await rec.ready();
const firstPoolMs = performance.now() - t0;
const shape = policy.pool.shape;
console.log(`catalog ${nItems} items, ${nUsers} unknown users per request, k=${k}; pool ${shape.vectors} vectors × ${shape.prefix} items (${((shape.vectors * shape.prefix * 8) / 1024).toFixed(0)} KiB), first pool on the draw worker in ${firstPoolMs.toFixed(0)} ms`);

const req = (filter: RecommendRequest['filter']): RecommendRequest => ({ users, k, excludeSeen: false, filter });
const before = await measure('before: per-user draws of the whole catalog (main thread)', () => {
  for (const _ of users) policy.rank(k, null, null);
}, 1);
const after = await measure('after:  Recommender.recommend from the draw pool', () => rec.recommend(req(null)));
const afterFiltered = await measure('after:  same, filter {"genre": "g3"} (1 in 8 items)', () => rec.recommend(req({ genre: 'g3' })));
const afterRare = await measure('after:  same, filter {"tier": "rare"} (1 in 1,000: past the prefix)', () => rec.recommend(req({ tier: 'rare' })));
const filterBefore = await measure('before: filter with 10,001 values, row-by-row matching', () => rowByRowMask({ genre: manyValues }), 1);
const filterAfter = await measure('after:  same filter from the index (mask + 1,000 users)', () => rec.recommend(req({ genre: manyValues })));

// A refresh under feedback: how long the worker takes for one pool (off the event loop).
bandit.update([{ itemId: itemIds[0], successes: 1, failures: 0 }]);
t0 = performance.now();
const during = await blocked(() => policy.settled());
console.log(`pool refresh after a posterior change: ${(performance.now() - t0).toFixed(0)} ms on the worker; longest timer gap meanwhile ${during.loopMaxMs.toFixed(1)} ms`);
console.log(
  JSON.stringify({
    bench: 'cold-start',
    items: nItems,
    users: nUsers,
    k,
    pool: shape,
    coldStartBeforeMs: +before.ms.toFixed(1),
    coldStartAfterMs: +after.ms.toFixed(1),
    coldStartFilteredAfterMs: +afterFiltered.ms.toFixed(1),
    coldStartRareFilterAfterMs: +afterRare.ms.toFixed(1),
    filter10001BeforeMs: +filterBefore.ms.toFixed(1),
    filter10001AfterMs: +filterAfter.ms.toFixed(1),
    loopMaxBeforeMs: +before.loopMaxMs.toFixed(1),
    loopMaxAfterMs: +after.loopMaxMs.toFixed(1),
  }),
);
await bandit.close();
