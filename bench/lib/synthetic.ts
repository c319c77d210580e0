// The benchmark's synthetic model. The generator is shared with the tests (test/fixtures/synthetic.ts);
// only the benchmark's size is set here.
import type { SyntheticSpec } from '../../test/fixtures/synthetic.js';

export { ensureSyntheticModel, genreOf, itemId, userId, type SyntheticSpec } from '../../test/fixtures/synthetic.js';

export const BENCH_MODEL: SyntheticSpec = { users: 10_000, items: 50_000, factors: 64, seed: 20261123, seenPerUser: 20, genres: 8 };
