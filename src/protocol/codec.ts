// SeldonMessage ⇄ recommender calls. Decoding checks meaning (ids, shapes, k) beyond the schema; both
// transports call it, so a payload means the same thing over REST and gRPC.
import type { ModelParams } from '../config.js';
import { badData } from '../errors.js';
import type { FilterValue, Recommendation, RecommendRequest } from '../model/recommender.js';
import { validate } from './contract.js';
import type { JsonValue, Meta, PayloadKind, SeldonMessage } from './seldon.js';

export type PredictInput =
  | { op: 'recommend'; request: RecommendRequest }
  | { op: 'pairs'; pairs: [string, string][] };

export type PredictOutput =
  | { op: 'recommend'; recommendations: Recommendation[] }
  | { op: 'pairs'; scores: number[] };

export interface DecodedPredict {
  kind: PayloadKind;
  input: PredictInput;
}

const PAYLOAD_KEYS = ['data', 'jsonData', 'strData', 'binData', 'customData'] as const;

export function payloadKeyOf(msg: SeldonMessage): (typeof PAYLOAD_KEYS)[number] | null {
  const present = PAYLOAD_KEYS.filter((k) => msg[k] !== undefined);
  if (present.length > 1) throw badData(`the message carries ${present.join(' and ')}; send exactly one payload`);
  return present[0] ?? null;
}

export function decodePredict(msg: SeldonMessage, params: ModelParams): DecodedPredict {
  const decoded = decodeMessage(msg, params);
  // Exploration slots for known users, in any payload form.
  const explore = msg.meta?.tags?.explore;
  if (explore !== undefined && decoded.input.op === 'recommend') {
    const n = tagNumber(msg.meta!.tags!, 'explore')!;
    if (!Number.isInteger(n) || n < 0) throw badData(`meta.tags.explore must be a whole number ≥ 0, got ${JSON.stringify(explore)}`);
    if (n > decoded.input.request.k) throw badData(`meta.tags.explore=${n} is larger than k=${decoded.input.request.k}`);
    decoded.input.request.explore = n;
  }
  return decoded;
}

function decodeMessage(msg: SeldonMessage, params: ModelParams): DecodedPredict {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    throw badData(`Invalid request data type: expected a SeldonMessage object, got ${describeType(msg)}`);
  }
  const key = payloadKeyOf(msg);
  const tags = msg.meta?.tags ?? {};
  switch (key) {
    case null:
      throw badData('Invalid request data type: the message needs one of data, jsonData, strData, binData');
    case 'customData':
      throw badData('customData is not supported by this model; send jsonData, data, strData or binData');
    case 'jsonData':
      return { kind: 'jsonData', input: fromJson(msg.jsonData, params, 'jsonData') };
    case 'strData':
      return { kind: 'strData', input: fromText(msg.strData!, params, 'strData') };
    case 'binData': {
      const text = Buffer.from(msg.binData!, 'base64').toString('utf8');
      return { kind: 'binData', input: fromText(text, params, 'binData') };
    }
    case 'data':
      return fromTable(msg, tags, params);
  }
}

/** strData/binData hold a RecommendRequest as JSON text, or just a user id. */
function fromText(text: string, params: ModelParams, where: string): PredictInput {
  const t = text.trim();
  if (t.length === 0) throw badData(`${where} is empty; send a user id or a JSON recommendation request`);
  if (t.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(t);
    } catch (e) {
      throw badData(`${where} is not valid JSON: ${(e as Error).message}`);
    }
    return fromJson(parsed as JsonValue, params, where);
  }
  return fromJson({ user_id: t }, params, where);
}

function fromJson(json: JsonValue | undefined, params: ModelParams, where: string): PredictInput {
  validate('RecommendRequest', json, where);
  const j = json as {
    user_id?: string | number;
    users?: (string | number)[];
    pairs?: [string | number, string | number][];
    k?: number;
    exclude_seen?: boolean;
    filter?: Record<string, FilterValue>;
  };
  if (j.pairs) {
    if (j.pairs.length > params.max_users) throw badData(`${where}/pairs has ${j.pairs.length} rows; at most ${params.max_users} per request`);
    return { op: 'pairs', pairs: j.pairs.map(([u, i]) => [String(u), String(i)]) };
  }
  const users = j.users ? j.users.map(String) : [String(j.user_id)];
  return { op: 'recommend', request: recommendRequest(users, j.k, j.exclude_seen, j.filter ?? null, params, where) };
}

function recommendRequest(
  users: string[],
  k: number | undefined,
  excludeSeen: boolean | undefined,
  filter: Record<string, FilterValue> | null,
  params: ModelParams,
  where: string,
): RecommendRequest {
  const kk = k ?? params.k;
  if (!Number.isInteger(kk) || kk < 1) throw badData(`${where}: k must be a whole number ≥ 1, got ${JSON.stringify(k)}`);
  if (kk > params.max_k) throw badData(`${where}: k=${kk} is larger than max_k=${params.max_k}`);
  if (users.length > params.max_users) throw badData(`${where}: ${users.length} users in one request; at most ${params.max_users}`);
  return { users, k: kk, excludeSeen: excludeSeen ?? params.exclude_seen, filter };
}

/** data.ndarray / data.tensor: a user column (top-k) or user + item columns (pair scores). */
function fromTable(msg: SeldonMessage, tags: Record<string, JsonValue>, params: ModelParams): DecodedPredict {
  const data = msg.data!;
  if (data.tftensor !== undefined) throw badData('data.tftensor is not supported; send data.ndarray or data.tensor');
  let rows: JsonValue[][];
  let kind: PayloadKind;
  if (data.tensor !== undefined) {
    kind = 'tensor';
    const { shape, values } = data.tensor;
    const size = shape.reduce((a, b) => a * b, 1);
    if (shape.length === 0 || shape.length > 2) throw badData(`data.tensor.shape ${JSON.stringify(shape)} must be [n] or [n, columns]`);
    if (size !== values.length) throw badData(`data.tensor holds ${values.length} values but shape ${JSON.stringify(shape)} needs ${size}`);
    const cols = shape.length === 2 ? shape[1] : 1;
    rows = Array.from({ length: shape[0] }, (_, r) => values.slice(r * cols, (r + 1) * cols));
  } else if (data.ndarray !== undefined) {
    kind = 'ndarray';
    rows = data.ndarray.map((row, r) => {
      if (Array.isArray(row)) return row;
      if (typeof row === 'object' && row !== null) throw badData(`data.ndarray/${r} must be an id or a row of ids, got an object`);
      return [row]; // a flat list is one user column
    });
    const width = rows[0]?.length ?? 0;
    rows.forEach((row, r) => {
      if (row.length !== width) throw badData(`data.ndarray is ragged: row 0 has ${width} columns, row ${r} has ${row.length}`);
    });
  } else {
    throw badData('data needs ndarray or tensor');
  }
  if (rows.length === 0) throw badData(`data.${kind} is empty; send at least one user id`);
  const width = rows[0].length;
  const names = data.names ?? [];
  const userCol = columnIndex(names, ['user_id', 'user', 'users', 'uid'], 0);
  if (width === 1) {
    if (names.length > 1) throw badData(`data.names lists ${names.length} columns but the rows have 1`);
    const users = rows.map((row, r) => idOf(row[0], `data.${kind}/${r}/0`));
    const request = recommendRequest(users, tagNumber(tags, 'k'), tagBool(tags, 'exclude_seen'), tagFilter(tags), params, 'data');
    return { kind, input: { op: 'recommend', request } };
  }
  if (width === 2) {
    if (names.length !== 0 && names.length !== 2) throw badData(`data.names lists ${names.length} columns but the rows have 2`);
    const itemCol = names.length === 2 ? 1 - userCol : 1;
    if (rows.length > params.max_users) throw badData(`data.${kind} has ${rows.length} rows; at most ${params.max_users} per request`);
    const pairs = rows.map((row, r) => [idOf(row[userCol], `data.${kind}/${r}/${userCol}`), idOf(row[itemCol], `data.${kind}/${r}/${itemCol}`)] as [string, string]);
    return { kind, input: { op: 'pairs', pairs } };
  }
  throw badData(`data.${kind} rows have ${width} columns; send 1 (user_id → top-k) or 2 (user_id, item_id → score)`);
}

function columnIndex(names: string[], aliases: string[], dflt: number): number {
  const i = names.findIndex((n) => aliases.includes(n.toLowerCase()));
  return i >= 0 ? i : dflt;
}

/** Ids are strings or whole numbers (a tensor's doubles arrive as 5 or 5.0; both mean "5"). */
function idOf(v: JsonValue, at: string): string {
  if (typeof v === 'string' && v.length > 0) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  throw badData(`${at}: an id must be a non-empty string or a whole number, got ${JSON.stringify(v) ?? describeType(v)}`);
}

function tagNumber(tags: Record<string, JsonValue>, key: string): number | undefined {
  const v = tags[key];
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  throw badData(`meta.tags.${key} must be a whole number, got ${JSON.stringify(v)}`);
}

function tagBool(tags: Record<string, JsonValue>, key: string): boolean | undefined {
  const v = tags[key];
  if (v === undefined) return undefined;
  if (typeof v === 'boolean') return v;
  throw badData(`meta.tags.${key} must be true or false, got ${JSON.stringify(v)}`);
}

function tagFilter(tags: Record<string, JsonValue>): Record<string, FilterValue> | null {
  const v = tags.filter;
  if (v === undefined) return null;
  validate('RecommendRequest', { user_id: 'x', filter: v }, 'meta.tags');
  return v as Record<string, FilterValue>;
}

function describeType(v: unknown): string {
  return Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v;
}

// ---- encoding ---------------------------------------------------------------------------------

/** The jsonData answer: also what strData/binData carry as JSON text. */
export function resultJson(out: PredictOutput): JsonValue {
  if (out.op === 'pairs') return { scores: out.scores };
  return {
    recommendations: out.recommendations.map((rec) => ({
      user_id: rec.userId,
      strategy: rec.strategy,
      items: rec.items.map((it) => {
        const item: Record<string, JsonValue> = { item_id: it.itemId, score: it.score };
        // Catalog fields follow, and never shadow the id or the score.
        if (it.fields) for (const [key, v] of Object.entries(it.fields)) if (!(key in item)) item[key] = v as JsonValue;
        return item;
      }),
    })),
  };
}

export const LONG_FORM_NAMES = ['user_id', 'item_id', 'score', 'rank'];

/** The payload part of the response, in the request's form. */
export function encodePredict(kind: PayloadKind, out: PredictOutput): Pick<SeldonMessage, 'data' | 'jsonData' | 'strData' | 'binData'> {
  switch (kind) {
    case 'jsonData':
      return { jsonData: resultJson(out) };
    case 'strData':
      return { strData: JSON.stringify(resultJson(out)) };
    case 'binData':
      return { binData: Buffer.from(JSON.stringify(resultJson(out))).toString('base64') };
    case 'ndarray':
    case 'tensor':
      return { data: encodeTable(kind, out) };
  }
}

function encodeTable(kind: 'ndarray' | 'tensor', out: PredictOutput): NonNullable<SeldonMessage['data']> {
  if (out.op === 'pairs') {
    return kind === 'tensor'
      ? { names: ['score'], tensor: { shape: [out.scores.length, 1], values: out.scores } }
      : { names: ['score'], ndarray: out.scores.map((s) => [s]) };
  }
  const rows: (string | number)[][] = [];
  for (const rec of out.recommendations) {
    rec.items.forEach((it, r) => rows.push([rec.userId, it.itemId, it.score, r + 1]));
  }
  if (kind === 'ndarray') return { names: LONG_FORM_NAMES, ndarray: rows };
  const values: number[] = [];
  for (const row of rows) {
    for (const [c, v] of row.entries()) {
      const n = Number(v);
      if (!Number.isFinite(n)) throw badData(`a tensor answer carries numbers only, but ${LONG_FORM_NAMES[c]} "${v}" is not numeric; send data.ndarray`);
      values.push(n);
    }
  }
  return { names: LONG_FORM_NAMES, tensor: { shape: [rows.length, LONG_FORM_NAMES.length], values } };
}

/** Strategy per user, for the tags of table answers (which have no place for it in the rows). */
export function coldStartUsers(out: PredictOutput): string[] {
  return out.op === 'recommend' ? out.recommendations.filter((r) => r.strategy === 'cold_start').map((r) => r.userId) : [];
}

export type { Meta };
