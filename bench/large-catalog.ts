// Large catalogs: float32 against exact int8 top-k (src/model/int8-exact.ts) per catalog size, and the
// served latency and RSS of a 1,000,000-item model. `npm run bench` runs it after the serving figures
// (bench/serve.ts); alone:
//
//   node dist/bench/large-catalog.js [--catalogs 50000,200000,1000000] [--rounds 6] [--per-round 20]
//        [--threads 1] [--served-seconds 10] [--no-served] [--quick]
//
// Ends with one JSON line. The first 1M-item run writes the synthetic model (about a minute; cached
// in $TMPDIR/recserve-bench/).
import os from 'node:os';
import { parseArgs } from 'node:util';
import { formatRows, largeCatalogSummary, measureCatalog, measureServed } from './lib/large-catalog.js';

const { values: args } = parseArgs({
  options: {
    catalogs: { type: 'string' },
    rounds: { type: 'string' },
    'per-round': { type: 'string' },
    threads: { type: 'string', default: '1' },
    'served-seconds': { type: 'string' },
    'no-served': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
  },
});
const line = (s = '') => process.stdout.write(`${s}\n`);
const quick = args.quick!;
const catalogs = (args.catalogs ?? '50000,200000,1000000').split(',').map(Number);
line(`large catalogs: ${catalogs.join(', ')} items; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
const rows = [];
for (const items of catalogs) {
  rows.push(await measureCatalog(items, { rounds: Number(args.rounds ?? (quick ? 3 : 6)), perRound: Number(args['per-round'] ?? (quick ? 10 : 20)), intraOpThreads: Number(args.threads), log: line }));
}
for (const l of formatRows(rows)) line(l);
const biggest = Math.max(...catalogs);
const served = args['no-served'] ? null : await measureServed(biggest, { seconds: Number(args['served-seconds'] ?? (quick ? 4 : 10)) });
if (served) line(`served ${served.items} items, REST at 1 connection: p50 ${served.p50Ms.toFixed(2)} ms, p99 ${served.p99Ms.toFixed(2)} ms, ${served.rps.toFixed(0)} req/s, errors ${served.errors}; server RSS ${served.rssMb.toFixed(0)} MB`);
line(JSON.stringify(largeCatalogSummary(rows, served)));
