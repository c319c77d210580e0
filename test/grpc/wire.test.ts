// The direct JSON → wire writer (src/protocols/seldon-v1/wire.ts) against the reference path, the generated
// code (@bufbuild/protobuf fromJson → toBinary, proto-json.ts' encodeWithLibrary): the same bytes for every
// message it writes, never a message the reference refuses, and what it leaves to the reference (Refused)
// is rare on valid answers. Messages are random, seeded, and include the odd cases (snake_case keys,
// nulls, defaults, both members of a oneof, deep nesting, wrong types).
import { ScalarType, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { encodeFromJson, encodeWithLibrary, seldonProtos } from '../../src/protocols/seldon-v1/proto-json.js';
import { Refused, writeJson } from '../../src/protocols/seldon-v1/wire.js';
import { rng } from '../../src/util/random.js';


const WORDS = ['', 'a', 'user_id', 'k', 'model_name', 'ünïcødé ✓', '𝄞', 'x'.repeat(200), '0', '12', '__proto__', 'toString'];
const NUMBERS = [0, -0, 1, -1, 0.1, 0.3, 1e300, -1e-300, 2 ** 31, -(2 ** 31) - 1, 2 ** 53, 123456789.125, NaN, Infinity, -Infinity, 3.4e38, 1.5];

function generator(seed: number, opts: { invalid: boolean }) {
  const r = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
  const chance = (p: number) => r() < p;

  const json = (depth: number): unknown => {
    const k = Math.floor(r() * (depth > 3 ? 4 : 7));
    switch (k) {
      case 0:
        return null;
      case 1:
        return pick(NUMBERS);
      case 2:
        return pick(WORDS);
      case 3:
        return chance(0.5);
      case 4:
      case 5: {
        const n = Math.floor(r() * 4);
        return Array.from({ length: n }, () => json(depth + 1));
      }
      default: {
        const o: Record<string, unknown> = {};
        const n = Math.floor(r() * 4);
        for (let i = 0; i < n; i++) o[pick(WORDS)] = chance(0.05) ? undefined : json(depth + 1);
        return o;
      }
    }
  };

  const wrong = (): unknown => pick<unknown>([null, 'str', 1.5, true, [], {}, [1, 'a'], () => 0, undefined]);

  const scalar = (f: DescField): unknown => {
    if (f.fieldKind === 'enum' || (f.fieldKind !== 'message' && f.fieldKind !== 'scalar' && (f.fieldKind === 'list' ? f.listKind === 'enum' : f.mapKind === 'enum'))) {
      const e = (f as { enum: { values: { name: string }[] } }).enum;
      return chance(0.5) ? pick(e.values.map((v) => v.name)) : pick([0, 1, 2, 7, -1]);
    }
    switch ((f as { scalar: ScalarType }).scalar) {
      case ScalarType.STRING:
        return pick(WORDS);
      case ScalarType.BYTES:
        return pick(['', 'AAEC', 'aGVsbG8=', '////']);
      case ScalarType.BOOL:
        return chance(0.5);
      case ScalarType.INT64:
      case ScalarType.UINT64:
      case ScalarType.SINT64:
      case ScalarType.FIXED64:
      case ScalarType.SFIXED64:
        return pick<unknown>([0, 1, -1, 2 ** 40, '123', '-9007199254740993', '18446744073709551615', 7]);
      case ScalarType.DOUBLE:
      case ScalarType.FLOAT:
        return pick(NUMBERS);
      default:
        return pick([0, 1, -1, 2 ** 31, 2 ** 32 + 5, -(2 ** 31), 1.7, 300]);
    }
  };

  const message = (type: DescMessage, depth: number): unknown => {
    switch (type.typeName) {
      case 'google.protobuf.Value':
        return json(depth);
      case 'google.protobuf.Struct': {
        const v = json(depth + 1);
        return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : { a: v };
      }
      case 'google.protobuf.ListValue': {
        const v = json(depth + 1);
        return Array.isArray(v) ? v : [v];
      }
      case 'google.protobuf.Any':
        return { '@type': 'type.googleapis.com/x.Y', value: pick(['', 'AAEC']) };
    }
    const o: Record<string, unknown> = {};
    for (const f of type.fields) {
      if (!chance(depth > 2 ? 0.25 : 0.6)) continue;
      const sub = f.fieldKind === 'message' || (f.fieldKind === 'list' && f.listKind === 'message') || (f.fieldKind === 'map' && f.mapKind === 'message') ? f.message : undefined;
      // Any is left to the reference path (see wire.ts); it is covered by the odd cases below.
      if (sub?.typeName === 'google.protobuf.Any') continue;
      const key = chance(0.15) ? f.name : f.jsonName;
      if (opts.invalid && chance(0.04)) {
        o[key] = wrong();
        continue;
      }
      if (chance(0.05)) {
        o[key] = chance(0.5) ? null : undefined;
        continue;
      }
      const one = () => (sub ? (depth > 4 ? {} : message(sub, depth + 1)) : scalar(f));
      if (f.fieldKind === 'map') {
        const m: Record<string, unknown> = {};
        const n = Math.floor(r() * 3);
        for (let i = 0; i < n; i++) m[pick(WORDS.filter((w) => w !== '__proto__'))] = one();
        o[key] = m;
      } else if (f.fieldKind === 'list') {
        o[key] = Array.from({ length: Math.floor(r() * 4) }, one);
      } else {
        o[key] = one();
      }
    }
    if (chance(0.1)) o.unknownKey = json(depth + 1);
    return o;
  };
  return message;
}

/**
 * Both paths on one input: the same bytes, or the direct writer leaves it to the reference (deferred),
 * or both refuse; the direct writer never writes what the reference refuses.
 */
function compare(type: DescMessage, json: unknown): 'ok' | 'refused' | 'deferred' {
  let ref: Uint8Array | Error;
  try {
    ref = encodeWithLibrary(type, json);
  } catch (e) {
    ref = e as Error;
  }
  let direct: Uint8Array | Error;
  try {
    direct = writeJson(type, json);
  } catch (e) {
    direct = e as Error;
  }
  if (direct instanceof Error) {
    expect(direct, `the direct writer threw ${direct.message}`).toBeInstanceOf(Refused);
    if (ref instanceof Error) {
      expect(() => encodeFromJson(type, json)).toThrow(ref.message);
      return 'refused';
    }
    expect(Buffer.from(encodeFromJson(type, json)).toString('hex')).toBe(Buffer.from(ref).toString('hex'));
    return 'deferred';
  }
  if (ref instanceof Error) throw new Error(`the reference refused (${ref.message}) but the direct writer wrote ${JSON.stringify(json)}`);
  expect(Buffer.from(direct).toString('hex'), JSON.stringify(json)).toBe(Buffer.from(ref).toString('hex'));
  return 'ok';
}

const protos = seldonProtos();
const TYPES = [
  'seldon.protos.SeldonMessage',
  'seldon.protos.SeldonModelMetadata',
  'seldon.protos.Feedback',
  'seldon.protos.SeldonMessageList',
  'seldon.protos.SeldonGraphMetadata',
  'google.protobuf.Empty',
];

describe('direct wire writer', () => {
  it('writes a typical answer of every Seldon response type directly', () => {
    expect(compare(protos.type('seldon.protos.SeldonMessage'), { strData: 'x', meta: { puid: 'p', tags: { a: 1 } } })).toBe('ok');
    expect(compare(protos.type('seldon.protos.SeldonModelMetadata'), { name: 'm', versions: ['v'], inputs: [{ messagetype: 'jsonData', schema: { $ref: '#' } }], custom: { a: 'b' } })).toBe('ok');
    expect(compare(protos.type('google.protobuf.Empty'), {})).toBe('ok');
  });

  for (const name of TYPES) {
    it(`matches the reference byte for byte on random valid ${name} messages`, () => {
      const type = protos.type(name);
      const gen = generator(name.length * 7919, { invalid: false });
      let ok = 0;
      for (let i = 0; i < 1500; i++) if (compare(type, gen(type, 0)) === 'ok') ok++;
      // The generator is hostile on purpose (NaN in Values, 1e300 for floats, __proto__ keys, nulls):
      // those are left to the reference, so only a share is written directly.
      expect(ok).toBeGreaterThan(name === 'google.protobuf.Empty' ? 1400 : 100);
    });

    it(`refuses exactly what the reference refuses on random ${name} messages with wrong values`, () => {
      const type = protos.type(name);
      const gen = generator(name.length * 104729, { invalid: true });
      const seen = { ok: 0, refused: 0, deferred: 0 };
      for (let i = 0; i < 1500; i++) seen[compare(type, gen(type, 0))]++;
      if (type.fields.length > 2) expect(seen.refused).toBeGreaterThan(10);
    });
  }

  it('matches on typical predict answers and odd cases', () => {
    const type = protos.type('seldon.protos.SeldonMessage');
    const cases: unknown[] = [
      {
        jsonData: { recommendations: [{ user_id: 'u1', items: ['i1', 'i2'], scores: [0.5, 0.25], strategy: 'personalized' }] },
        meta: { puid: 'abc', tags: { model_name: 'm', model_version: 'v1' }, requestPath: { rec: 'img:1' } },
      },
      { data: { names: ['a', 'b'], tensor: { shape: [2, 2], values: [1, 2, 3, 4] } }, meta: {} },
      { data: { ndarray: [[1, 'x', null, true, { a: [] }]] }, strData: '' },
      { jsonData: null },
      { meta: { tags: null } },
      { meta: { request_path: { a: 'b' }, metrics: [{ key: 'k', type: 'GAUGE', value: 0.3, tags: { a: 'b' } }] } },
      { status: { code: 0, info: '', reason: '', status: 'FAILURE' }, binData: 'AAEC' },
      { meta: { routing: { a: 1.9, b: -3 } } },
      { data: { tensor: { shape: [1.5], values: ['1'] } } },
      { jsonData: () => 1 },
      [],
      null,
    ];
    for (const c of cases) compare(type, c);
    // The answer shapes are written directly.
    expect(compare(type, cases[0])).toBe('ok');
    expect(compare(type, cases[1])).toBe('ok');
  });

  it('leaves an Any, unknown enum names and non-finite numbers to the reference path, which writes them', () => {
    const type = protos.type('seldon.protos.SeldonMessage');
    expect(compare(type, { customData: { '@type': 'type.googleapis.com/a.B', value: 'AAEC' }, meta: { puid: 'p' } })).toBe('deferred');
    expect(compare(type, { customData: 'nope' })).toBe('refused');
    // An unknown enum name is ignored by the reference, like an unknown key.
    expect(compare(type, { meta: { metrics: [{ key: 'k', type: 'toString' }] } })).toBe('deferred');
    // Non-finite numbers: as the answer's JSON text has them (null, so the field's default).
    expect(compare(type, { jsonData: { score: NaN }, meta: { metrics: [{ key: 'k', value: Infinity }] } })).toBe('deferred');
  });

  it('matches on large answers (buffer growth, multi-byte lengths) and on any text', () => {
    const type = protos.type('seldon.protos.SeldonMessage');
    const big = Array.from({ length: 5000 }, (_, i) => ({ user_id: `u${i}`, items: [`i${i}`, 'é'.repeat(i % 70)], scores: [i / 7, -i], strategy: 'personalized' }));
    expect(compare(type, { jsonData: { recommendations: big }, meta: { puid: 'p', tags: { n: 5000 } } })).toBe('ok');
    expect(compare(type, { data: { tensor: { shape: [100000], values: Array.from({ length: 100000 }, (_, i) => i * 0.5) } } })).toBe('ok');
    const texts = ['\ud800', 'a\udc00b', '\ud83d\ude00', 'x'.repeat(39) + '\ud800', 'x'.repeat(40) + '\ud800', '\u0000', 'ß'.repeat(64), '€'.repeat(100)];
    // Around the writer's short-string limit (42 UTF-16 units), a pair split by it or not.
    texts.push('€'.repeat(42), '€'.repeat(43), 'x'.repeat(40) + '\ud83d\ude00', 'x'.repeat(41) + '\ud83d\ude00', 'x'.repeat(41) + '\ud83d', '\udbff\udfff'.repeat(21));
    for (const t of texts) expect(compare(type, { strData: t, meta: { puid: t, tags: { [t]: t } } })).toBe('ok');
    // The writer is shared: an answer after a large one is written from a clean start.
    expect(compare(type, { strData: 'small' })).toBe('ok');
  });

  it('leaves nesting past its depth limit to the reference', () => {
    const type = protos.type('seldon.protos.SeldonMessage');
    const results: string[] = [];
    for (let depth = 20; depth <= 60; depth++) {
      let v: unknown = 1;
      for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
      results.push(compare(type, { jsonData: v }));
    }
    expect(results).toContain('ok');
    expect(results).toContain('deferred');
  });
});
