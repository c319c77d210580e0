// Encoding the gRPC answers: the hand-written direct writer (src/protocols/seldon-v1/wire.ts)
// against the generated code (@bufbuild/protobuf fromJson + toBinary, what src/protocols/seldon-v1/
// proto-json.ts does), on the shapes the server sends most, plus decoding the matching requests.
// Prints ns/op for each. Run: npm run build --silent && node dist/bench/proto-encode.js [ms per case]
import { fromJson, toBinary } from '@bufbuild/protobuf';
import { decodeToJson, encodeWithLibrary, seldonProtos } from '../src/protocols/seldon-v1/proto-json.js';
import { writeJson } from '../src/protocols/seldon-v1/wire.js';

const MS_PER_CASE = Number(process.argv[2] ?? 1500);

const meta = (users: number) => ({
  puid: '3f0c8a52-3b7e-4f0e-9c55-0d5a2a1b7c11',
  tags: { model_name: 'movielens-100k', model_version: 'v20261201-1', ...(users > 1 ? { cold_start_users: [] } : {}) },
  requestPath: { recommender: 'recserve:0.1.0' },
});
const recs = (users: number, k: number) =>
  Array.from({ length: users }, (_, u) => ({
    user_id: String(100 + u),
    strategy: 'personalized',
    items: Array.from({ length: k }, (_, i) => ({ item_id: String(1000 + i * 7 + u), score: 4.5 - i * 0.137, title: `A Movie Title (${1990 + i})`, genres: 'Comedy|Drama' })),
  }));
const rows = (users: number, k: number) => recs(users, k).flatMap((r) => r.items.map((it, i) => [r.user_id, it.item_id, it.score, i + 1]));

const ANSWERS: [string, string, unknown][] = [
  ['jsonData, 1 user, k=10', 'seldon.protos.SeldonMessage', { jsonData: { recommendations: recs(1, 10) }, meta: meta(1) }],
  ['jsonData, 32 users, k=10', 'seldon.protos.SeldonMessage', { jsonData: { recommendations: recs(32, 10) }, meta: meta(32) }],
  ['ndarray, 1 user, k=10', 'seldon.protos.SeldonMessage', { data: { names: ['user_id', 'item_id', 'score', 'rank'], ndarray: rows(1, 10) }, meta: meta(1) }],
  ['tensor, 32 users, k=10', 'seldon.protos.SeldonMessage', { data: { names: ['user_id', 'item_id', 'score', 'rank'], tensor: { shape: [320, 4], values: rows(32, 10).flat().map(Number) } }, meta: meta(32) }],
  ['strData, 1 user, k=10', 'seldon.protos.SeldonMessage', { strData: JSON.stringify({ recommendations: recs(1, 10) }), meta: meta(1) }],
  ['feedback answer', 'seldon.protos.SeldonMessage', { data: { names: [], ndarray: [] }, meta: meta(1) }],
];
const REQUESTS: [string, string, unknown][] = [
  ['jsonData request', 'seldon.protos.SeldonMessage', { jsonData: { user_id: '196', k: 10 } }],
  ['ndarray request, 32 users', 'seldon.protos.SeldonMessage', { data: { names: ['user_id'], ndarray: Array.from({ length: 32 }, (_, i) => [String(i + 1)]) }, meta: { tags: { k: 10 } } }],
  ['feedback request', 'seldon.protos.Feedback', { response: { meta: { puid: '3f0c8a52-3b7e-4f0e-9c55-0d5a2a1b7c11' } }, truth: { jsonData: { items: ['50', '181'] } }, reward: 1 }],
];

/** Mean ns per call over about `ms` of calls, after a warm-up. */
function nsPerOp(fn: () => unknown, ms: number): number {
  const until = (deadline: number) => {
    let n = 0;
    while (performance.now() < deadline) for (let i = 0; i < 100; i++, n++) fn();
    return n;
  };
  until(performance.now() + ms / 3);
  const t0 = performance.now();
  const n = until(t0 + ms);
  return ((performance.now() - t0) * 1e6) / n;
}

const protos = seldonProtos();
const fmt = (ns: number) => `${Math.round(ns).toLocaleString('en-US')} ns`.padStart(14);
console.log(`proto encode/decode, ${MS_PER_CASE} ms per case, node ${process.version}`);
console.log(`${'answer'.padEnd(28)}${'bytes'.padStart(8)}${'wire.ts'.padStart(14)}${'generated'.padStart(14)}${'toBinary'.padStart(14)}  generated / wire.ts`);
for (const [name, typeName, json] of ANSWERS) {
  const desc = protos.type(typeName);
  const bytes = writeJson(desc, json).byteLength;
  const direct = nsPerOp(() => writeJson(desc, json), MS_PER_CASE);
  const generated = nsPerOp(() => encodeWithLibrary(desc, json), MS_PER_CASE);
  // toBinary alone, from a message already built: the part fromJson does not cost.
  const msg = fromJson(desc, json as never, { ignoreUnknownFields: true });
  const binaryOnly = nsPerOp(() => toBinary(desc, msg), MS_PER_CASE);
  console.log(`${name.padEnd(28)}${String(bytes).padStart(8)}${fmt(direct)}${fmt(generated)}${fmt(binaryOnly)}  ${(generated / direct).toFixed(1)}×`);
}
console.log(`${'request'.padEnd(28)}${'bytes'.padStart(8)}${'decode'.padStart(14)}`);
for (const [name, typeName, json] of REQUESTS) {
  const desc = protos.type(typeName);
  const bytes = encodeWithLibrary(desc, json);
  console.log(`${name.padEnd(28)}${String(bytes.byteLength).padStart(8)}${fmt(nsPerOp(() => decodeToJson(desc, bytes), MS_PER_CASE))}`);
}
