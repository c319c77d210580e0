// Seed messages for the fuzzers: every payload form of README.md's "The API" section, valid against the
// demo model (users "1"–"300", items "1"–"120" with title/genre/year), for predict and for feedback.
import type { Json } from './mutate.js';

/** The puid the corpus' feedback names; the fuzzers first predict once with this puid so it is known. */
export const SEED_PUID = 'fuzz-seed-puid-0001';

const meta: Json = {
  puid: 'fuzz-meta-puid',
  tags: { k: 2, exclude_seen: false, filter: { genre: 'Drama' }, source: 'fuzz' },
  metrics: [
    { key: 'fuzz_counter', type: 'COUNTER', value: 1 },
    { key: 'fuzz_gauge', type: 'GAUGE', value: 2.5, tags: { a: 'b' } },
    { key: 'fuzz_timer', type: 'TIMER', value: 12.5 },
  ],
  routing: { router: 0 },
  requestPath: { recommender: 'recserve:dev' },
};

export const PREDICT_SEEDS: Json[] = [
  { jsonData: { user_id: '1' } },
  { jsonData: { user_id: '1', k: 3 } },
  { jsonData: { user_id: 42, k: 1, exclude_seen: true } },
  { jsonData: { users: ['1', '2', 'new-visitor'], k: 2, exclude_seen: false } },
  { jsonData: { user_id: '1', k: 2, filter: { genre: 'Comedy' } } },
  { jsonData: { user_id: '5', filter: { genre: ['Comedy', 'Drama'], year: 1988 } } },
  { jsonData: { pairs: [['1', '18'], ['2', '5']] } },
  { meta: { tags: { k: 2 } }, data: { names: ['user_id'], ndarray: [['1'], ['2']] } },
  { data: { names: ['user_id', 'item_id'], ndarray: [['1', '18'], ['2', '5']] } },
  { data: { names: ['item_id', 'user_id'], ndarray: [['18', '1']] } },
  { data: { ndarray: [[1], [2]] } },
  { data: { tensor: { shape: [1, 2], values: [3, 7] } } },
  { data: { names: ['user_id'], tensor: { shape: [2, 1], values: [3, 7] } }, meta: { tags: { k: 3, exclude_seen: true } } },
  { strData: '{"user_id": "7", "k": 1}' },
  { strData: '5' },
  { binData: Buffer.from('{"user_id": "7", "k": 2}').toString('base64') },
  { meta, jsonData: { user_id: '3' } },
  { meta: { puid: SEED_PUID, tags: { k: 5 } }, data: { names: ['user_id'], ndarray: [['9']] } },
];

export const FEEDBACK_SEEDS: Json[] = [
  { request: { jsonData: { user_id: '1' } }, truth: { jsonData: ['18'] }, reward: 1 },
  { response: { meta: { puid: SEED_PUID } }, reward: 1 },
  { response: { meta: { puid: SEED_PUID } }, truth: { jsonData: ['18', '19'] }, reward: 0.25 },
  {
    request: { jsonData: { user_id: '2', k: 3 } },
    response: { jsonData: { recommendations: [{ user_id: '2', strategy: 'personalized', items: [{ item_id: '5', score: 4 }] }] } },
    truth: { jsonData: ['5'] },
    reward: 0.5,
  },
  { request: { data: { names: ['user_id'], ndarray: [['3']] } }, truth: { data: { ndarray: [['7']] } }, reward: 0 },
  { request: { data: { tensor: { shape: [1, 1], values: [4] } } }, truth: { data: { tensor: { shape: [1, 1], values: [9] } } }, reward: 1 },
  { request: { strData: '{"user_id": "5"}' }, truth: { strData: '["3"]' }, reward: 1 },
  {
    request: { meta, jsonData: { user_id: '1' } },
    response: { meta: { puid: SEED_PUID, tags: { model_name: 'demo-movies' } }, data: { names: ['user_id', 'item_id', 'score', 'rank'], ndarray: [['1', '35', 5, 1]] } },
    reward: 1,
  },
];

/** A request every fuzz check ends with: it must answer 200 while the server is healthy. */
export const GOOD_PREDICT: Json = { jsonData: { user_id: '1', k: 2 } };

type Msg = { [k: string]: Json };
const obj = (v: Json | undefined): Msg => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Msg) : {});

/**
 * Mutations aimed at the sizes a client controls (the reproducers), applied to a seed before the
 * generic ones: each takes a copy of a message and returns the changed message.
 */
export const TARGETED: { name: string; apply(m: Msg, longText: string): Msg }[] = [
  ...[[400000000, 0], [4294967296, 0], [0, 400000000], [1e308, 1], [-1, 2], [2, -1], [1.5, 2], [100000, 100000], [2 ** 31, 2 ** 31], [3], [], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]].map((shape) => ({
    name: `tensor.shape=${JSON.stringify(shape)}`,
    apply: (m: Msg) => ({ ...m, data: { tensor: { shape, values: [] } } }),
  })),
  { name: 'tensor.shape of 100k entries', apply: (m) => ({ ...m, data: { tensor: { shape: Array.from({ length: 100_000 }, () => 1), values: [1] } } }) },
  { name: 'k=1e308', apply: (m) => ({ ...m, jsonData: { ...obj(m.jsonData), user_id: '1', k: 1e308 } }) },
  { name: 'k=4294967296', apply: (m) => ({ ...m, jsonData: { ...obj(m.jsonData), user_id: '1', k: 4294967296 } }) },
  { name: '5,000 users', apply: (m) => ({ ...m, jsonData: { users: Array.from({ length: 5000 }, (_, i) => `u${i}`), k: 3 } }) },
  { name: '5,000 pairs', apply: (m) => ({ ...m, jsonData: { pairs: Array.from({ length: 5000 }, (_, i) => [String(1 + (i % 300)), String(1 + (i % 120))]) } }) },
  { name: 'long user_id', apply: (m, long) => ({ ...m, jsonData: { user_id: long } }) },
  { name: 'long meta.puid', apply: (m, long) => ({ ...m, meta: { ...obj(m.meta), puid: long } }) },
  { name: 'long filter key', apply: (m, long) => ({ ...m, jsonData: { user_id: '1', filter: { [long]: 'Comedy' } } }) },
  { name: 'long filter value', apply: (m, long) => ({ ...m, jsonData: { user_id: '1', filter: { genre: long } } }) },
  { name: '10,001 filter values', apply: (m) => ({ ...m, jsonData: { user_id: '1', filter: { genre: Array.from({ length: 10_001 }, (_, i) => `g${i}`) } } }) },
  { name: 'long tag key', apply: (m, long) => ({ ...m, meta: { tags: { [long]: 1 } } }) },
  { name: '5,000 tags', apply: (m) => ({ ...m, meta: { tags: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`t${i}`, i])) } }) },
  { name: 'long ndarray id', apply: (m, long) => ({ ...m, data: { names: ['user_id'], ndarray: [[long]] } }) },
  { name: 'unknown names', apply: (m) => ({ ...m, data: { names: ['who', 'what'], ndarray: [['1', '2']] } }) },
  { name: 'ragged ndarray', apply: (m) => ({ ...m, data: { ndarray: [['1'], ['1', '2'], []] } }) },
  { name: 'feedback: 5,000-item truth', apply: () => ({ request: { jsonData: { user_id: '1' } }, truth: { jsonData: Array.from({ length: 5000 }, (_, i) => String(i)) }, reward: 1 }) },
  { name: 'feedback: long puid', apply: (_m, long) => ({ response: { meta: { puid: long } }, reward: 1 }) },
  { name: 'feedback: tensor request shape [400000000,0]', apply: () => ({ request: { data: { tensor: { shape: [400000000, 0], values: [] } } }, reward: 1 }) },
  { name: 'feedback: reward 2', apply: (m) => ({ ...m, reward: 2 }) },
  { name: 'feedback: reward -0.5', apply: (m) => ({ ...m, reward: -0.5 }) },
  { name: 'feedback: reward only', apply: () => ({ reward: 0.5 }) },
  { name: 'feedback: truth items never shown', apply: () => ({ response: { meta: { puid: SEED_PUID } }, truth: { jsonData: ['<b>injected</b>', 'no-such-item'] }, reward: 1 }) },
];
