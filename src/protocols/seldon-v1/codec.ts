// SeldonMessage ⇄ recommender calls. Decoding checks meaning (ids, shapes, k) beyond the schema; both
// transports call it, so a payload means the same thing over REST and gRPC.
import type { ModelParams } from '../../config/index.js';
import { badData, quote } from '../../errors.js';
import { LIMIT_DEFAULTS, limitHint, type Limits } from '../../config/limits.js';
import type { FilterValue, RecommendedItem, RecommendRequest } from '../../model/recommender.js';
import { boundsOf, validate, type Bounds } from '../contract.js';
import { parseJsonText } from '../json.js';
import { becauseJson, checkFilter, checkSimilarTo, itemOptions, recommendOptions, RECOMMEND_ONLY, similarItems, type OptionsJson } from '../../core/request-options.js';
import type { JsonValue, Meta, PayloadKind, SeldonMessage } from './messages.js';

import type { PredictInput, PredictOutput } from '../../core/types.js';

export type { PredictInput, PredictOutput } from '../../core/types.js';

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

/** What decoding is bounded by: the model parameters (k, max_k, max_users) and the size limits. */
interface Ctx {
  params: ModelParams;
  limits: Limits;
  bounds: Bounds;
}

export function decodePredict(msg: SeldonMessage, params: ModelParams, limits: Limits = LIMIT_DEFAULTS): DecodedPredict {
  const ctx: Ctx = { params, limits, bounds: boundsOf({ params, limits }) };
  checkMeta(msg?.meta, limits);
  const decoded = decodeMessage(msg, ctx);
  // Exploration slots for known users, in any payload form.
  const explore = msg.meta?.tags?.explore;
  if (explore !== undefined && decoded.input.op === 'recommend') {
    const n = tagNumber(msg.meta!.tags!, 'explore')!;
    if (!Number.isInteger(n) || n < 0) throw badData(`meta.tags.explore must be a whole number ≥ 0, got ${numberText(explore)}`);
    if (n > decoded.input.request.k) throw badData(`meta.tags.explore=${n} is larger than k=${decoded.input.request.k}`);
    decoded.input.request.explore = n;
  }
  return decoded;
}

function decodeMessage(msg: SeldonMessage, ctx: Ctx): DecodedPredict {
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
      return { kind: 'jsonData', input: fromJson(msg.jsonData, ctx, 'jsonData') };
    case 'strData':
      return { kind: 'strData', input: fromText(msg.strData!, ctx, 'strData') };
    case 'binData': {
      const text = Buffer.from(msg.binData!, 'base64').toString('utf8');
      return { kind: 'binData', input: fromText(text, ctx, 'binData') };
    }
    case 'data':
      return fromTable(msg, tags, ctx);
  }
}

/** strData/binData hold a RecommendRequest as JSON text, or just a user id. */
function fromText(text: string, ctx: Ctx, where: string): PredictInput {
  const t = text.trim();
  if (t.length === 0) throw badData(`${where} is empty; send a user id or a JSON recommendation request`);
  if (t.startsWith('{')) return fromJson(parseJsonText(t, where, ctx.limits.maxJsonDepth, '', ctx.limits.maxJsonValues) as JsonValue, ctx, where);
  return fromJson({ user_id: t }, ctx, where);
}

function fromJson(json: JsonValue | undefined, ctx: Ctx, where: string): PredictInput {
  const { params, limits } = ctx;
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) checkSimilarTo(json.similar_to, limits, `${where}/similar_to`);
  validate('RecommendRequest', json, where, ctx.bounds);
  const j = json as OptionsJson & {
    user_id?: string | number;
    users?: (string | number)[];
    pairs?: [string | number, string | number][];
    exclude_seen?: boolean;
  };
  const id = (v: JsonValue, at: string) => idOf(v, at, limits);
  if (j.pairs) {
    const other = RECOMMEND_ONLY.find((key) => j[key] !== undefined);
    if (other) throw badData(`${where}/${other} is a recommendation option; pair scoring takes none`);
    if (j.pairs.length > limits.maxPairs) throw badData(`${where}/pairs has ${j.pairs.length} rows; at most ${limits.maxPairs} per request${limitHint(limits, 'maxPairs')}`);
    return { op: 'pairs', pairs: j.pairs.map(([u, i], r) => [id(u, `${where}/pairs/${r}/0`), id(i, `${where}/pairs/${r}/1`)]) };
  }
  if (j.filter) checkFilter(j.filter, limits, `${where}/filter`);
  const k = checkK(j.k, params, where);
  const options = itemOptions(j, k, j.filter ?? null, id, where);
  if (j.similar_to !== undefined) {
    if (j.explain !== undefined) throw badData(`${where}/explain: similar items are their own explanation; explain is for recommendations`);
    return { op: 'similar', request: { ...options, items: similarItems(j, id, where) } };
  }
  // Through idOf like every other form: a number past 2^53 has lost digits and is refused, and lengths count as everywhere.
  const users = j.users ? j.users.map((u, r) => id(u, `${where}/users/${r}`)) : j.user_id !== undefined ? [id(j.user_id, `${where}/user_id`)] : [];
  if (users.length > params.max_users) throw badData(`${where}: ${users.length} users in one request; at most ${params.max_users} (graph parameter max_users)`);
  return { op: 'recommend', request: recommendOptions(j, { ...options, users, excludeSeen: j.exclude_seen ?? params.exclude_seen }, id, where) };
}

function checkK(k: number | undefined, params: ModelParams, where: string): number {
  const kk = k ?? params.k;
  if (!Number.isInteger(kk) || kk < 1) throw badData(`${where}: k must be a whole number ≥ 1, got ${numberText(k)}`);
  if (kk > params.max_k) throw badData(`${where}: k=${kk} is larger than max_k=${params.max_k} (graph parameter max_k)`);
  return kk;
}

function recommendRequest(
  users: string[],
  k: number | undefined,
  excludeSeen: boolean | undefined,
  filter: Record<string, FilterValue> | null,
  params: ModelParams,
  where: string,
): RecommendRequest {
  const kk = checkK(k, params, where);
  if (users.length > params.max_users) throw badData(`${where}: ${users.length} users in one request; at most ${params.max_users} (graph parameter max_users)`);
  return { users, k: kk, excludeSeen: excludeSeen ?? params.exclude_seen, filter };
}

/** Column names a table may use for its user and item columns (lower case). */
export const USER_COLUMN_NAMES = ['user_id', 'user', 'users', 'uid'];
export const ITEM_COLUMN_NAMES = ['item_id', 'item', 'items', 'iid'];

/**
 * Rows of a data.tensor, checked before anything is allocated: at most 2 dimensions, each within the
 * value limit, and their product equal to the number of values (so shape [400000000, 0] is refused
 * without building 400 million empty rows).
 */
export function tensorRows(tensor: { shape: number[]; values: JsonValue[] }, limits: Limits, where: string): JsonValue[][] {
  const { shape, values } = tensor;
  if (!Array.isArray(shape) || shape.length === 0 || shape.length > 2) throw badData(`${where}.shape ${quote(shape)} must be [n] or [n, columns]`);
  let size = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw badData(`${where}.shape ${quote(shape)} must hold whole numbers ≥ 0`);
    if (d > limits.maxTensorValues) throw badData(`${where}.shape ${quote(shape)} has a dimension above ${limits.maxTensorValues}${limitHint(limits, 'maxTensorValues')}`);
    size *= d;
  }
  if (!Array.isArray(values) || size !== values.length) throw badData(`${where} holds ${Array.isArray(values) ? values.length : 0} values but shape ${quote(shape)} needs ${size}`);
  if (size > limits.maxTensorValues) throw badData(`${where} holds ${size} values; at most ${limits.maxTensorValues}${limitHint(limits, 'maxTensorValues')}`);
  const cols = shape.length === 2 ? shape[1] : 1;
  const n = shape[0];
  if (cols === 0) return [];
  const rows: JsonValue[][] = new Array(n);
  for (let r = 0; r < n; r++) rows[r] = values.slice(r * cols, (r + 1) * cols);
  return rows;
}

/** data.ndarray rows: a flat list is one column; rows must all be as wide as the first. */
export function ndarrayRows(ndarray: JsonValue[], limits: Limits, where: string): JsonValue[][] {
  if (ndarray.length > limits.maxTensorValues) throw badData(`${where} has ${ndarray.length} rows; at most ${limits.maxTensorValues}${limitHint(limits, 'maxTensorValues')}`);
  const rows = ndarray.map((row, r) => {
    if (Array.isArray(row)) return row;
    if (typeof row === 'object' && row !== null) throw badData(`${where}/${r} must be an id or a row of ids, got an object`);
    return [row];
  });
  const width = rows[0]?.length ?? 0;
  rows.forEach((row, r) => {
    if (row.length !== width) throw badData(`${where} is ragged: row 0 has ${width} columns, row ${r} has ${row.length}`);
  });
  return rows;
}

/**
 * Which column holds users and which items. With `names`, columns are found by name and any other
 * name is refused (a misspelt column must not silently become the user column); without, by position.
 */
function columnsOf(names: string[] | undefined, width: number, where: string): { user: number; item: number | null } {
  if (names === undefined || names.length === 0) return { user: 0, item: width === 2 ? 1 : null };
  if (names.length !== width) throw badData(`data.names lists ${names.length} columns but the rows have ${width}`);
  let user = -1;
  let item = -1;
  names.forEach((raw, c) => {
    const n = String(raw).toLowerCase();
    if (USER_COLUMN_NAMES.includes(n) && user < 0) user = c;
    else if (ITEM_COLUMN_NAMES.includes(n) && item < 0 && width === 2) item = c;
    else {
      const allowed = width === 2 ? [...USER_COLUMN_NAMES, ...ITEM_COLUMN_NAMES] : USER_COLUMN_NAMES;
      throw badData(`${where}: column name ${quote(raw)} is not allowed here; use ${allowed.join(', ')} (one user column${width === 2 ? ' and one item column' : ''})`);
    }
  });
  if (user < 0) throw badData(`${where}: no user column among ${quote(names)}; name it user_id`);
  if (width === 2 && item < 0) throw badData(`${where}: no item column among ${quote(names)}; name it item_id`);
  return { user, item: width === 2 ? item : null };
}

/** data.ndarray / data.tensor: a user column (top-k) or user + item columns (pair scores). */
function fromTable(msg: SeldonMessage, tags: Record<string, JsonValue>, ctx: Ctx): DecodedPredict {
  const { params, limits } = ctx;
  const jsonOnly = JSON_ONLY_OPTIONS.filter((key) => tags[key] !== undefined);
  if (jsonOnly.length > 0) {
    throw badData(`meta.tags.${jsonOnly.join(', meta.tags.')}: ${jsonOnly.join(', ')} ${jsonOnly.length > 1 ? 'are' : 'is'} only read from jsonData; the tabular form answers plain top-k`);
  }
  const data = msg.data!;
  if (data.tftensor !== undefined) throw badData('data.tftensor is not supported; send data.ndarray or data.tensor');
  let rows: JsonValue[][];
  let kind: PayloadKind;
  if (data.tensor !== undefined) {
    kind = 'tensor';
    rows = tensorRows(data.tensor, limits, 'data.tensor');
  } else if (data.ndarray !== undefined) {
    kind = 'ndarray';
    rows = ndarrayRows(data.ndarray, limits, 'data.ndarray');
  } else {
    throw badData('data needs ndarray or tensor');
  }
  if (rows.length === 0) throw badData(`data.${kind} is empty; send at least one user id`);
  const width = rows[0].length;
  if (width !== 1 && width !== 2) throw badData(`data.${kind} rows have ${width} columns; send 1 (user_id → top-k) or 2 (user_id, item_id → score)`);
  const cols = columnsOf(data.names, width, 'data.names');
  if (cols.item === null) {
    if (rows.length > params.max_users) throw badData(`data.${kind}: ${rows.length} users in one request; at most ${params.max_users} (graph parameter max_users)`);
    const users = rows.map((row, r) => idOf(row[0], `data.${kind}/${r}/0`, limits));
    const request = recommendRequest(users, tagNumber(tags, 'k'), tagBool(tags, 'exclude_seen'), tagFilter(tags, ctx), params, 'data');
    const options = itemOptions(tagOptions(tags, ctx), request.k, request.filter, (v, at) => idOf(v, at, limits), 'meta.tags');
    return { kind, input: { op: 'recommend', request: { ...request, ...options } } };
  }
  // As jsonData pairs: an option scoring would ignore is refused, not silently dropped.
  const option = TABLE_OPTIONS.find((key) => tags[key] !== undefined);
  if (option) throw badData(`meta.tags/${option} is a recommendation option; pair scoring takes none`);
  if (rows.length > limits.maxPairs) throw badData(`data.${kind} has ${rows.length} rows; at most ${limits.maxPairs} per request${limitHint(limits, 'maxPairs')}`);
  const { user, item } = cols;
  const pairs = rows.map((row, r) => [idOf(row[user], `data.${kind}/${r}/${user}`, limits), idOf(row[item], `data.${kind}/${r}/${item}`, limits)] as [string, string]);
  return { kind, input: { op: 'pairs', pairs } };
}

/** Ids are strings or whole numbers (a tensor's doubles arrive as 5 or 5.0; both mean "5"); at most maxIdLength characters everywhere. */
export function idOf(v: JsonValue, at: string, limits: Limits): string {
  if (typeof v === 'string' && v.length > 0 && v.length <= limits.maxIdLength) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'string' && v.length > limits.maxIdLength) throw badData(`${at}: an id is at most ${limits.maxIdLength} characters, got ${v.length}${limitHint(limits, 'maxIdLength')}`);
  throw badData(`${at}: an id must be a non-empty string or a whole number, got ${quote(v) ?? describeType(v)}`);
}

/**
 * meta sizes that the schema cannot bound alone: the JSON size of tags (echoed in every answer).
 * Runs before the message is decoded, on predict and on each message of a feedback.
 */
export function checkMeta(meta: unknown, limits: Limits, where = 'meta'): void {
  if (typeof meta !== 'object' || meta === null) return;
  const m = meta as { puid?: unknown; tags?: unknown };
  if (typeof m.puid === 'string' && m.puid.length > limits.maxIdLength) {
    throw badData(`${where}.puid is ${m.puid.length} characters; at most ${limits.maxIdLength}${limitHint(limits, 'maxIdLength')}`);
  }
  if (typeof m.tags === 'object' && m.tags !== null) {
    const keys = Object.keys(m.tags);
    if (keys.length > limits.maxTags) throw badData(`${where}.tags has ${keys.length} keys; at most ${limits.maxTags}${limitHint(limits, 'maxTags')}`);
    const bytes = Buffer.byteLength(JSON.stringify(m.tags));
    if (bytes > limits.maxTagsBytes) throw badData(`${where}.tags is ${bytes} bytes of JSON; at most ${limits.maxTagsBytes}${limitHint(limits, 'maxTagsBytes')}`);
  }
}

function tagNumber(tags: Record<string, JsonValue>, key: string): number | undefined {
  const v = tags[key];
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d{1,15}$/.test(v)) return Number(v);
  throw badData(`meta.tags.${key} must be a whole number, got ${quote(v)}`);
}

function tagBool(tags: Record<string, JsonValue>, key: string): boolean | undefined {
  const v = tags[key];
  if (v === undefined) return undefined;
  if (typeof v === 'boolean') return v;
  throw badData(`meta.tags.${key} must be true or false, got ${quote(v)}`);
}

function tagFilter(tags: Record<string, JsonValue>, ctx: Ctx): Record<string, FilterValue> | null {
  const v = tags.filter;
  if (v === undefined) return null;
  validate('RecommendRequest', { user_id: 'x', filter: v }, 'meta.tags', ctx.bounds);
  checkFilter(v as Record<string, FilterValue>, ctx.limits, 'meta.tags/filter');
  return v as Record<string, FilterValue>;
}

/** Table requests carry these recommendation options in meta.tags (sessions, similar items and explanations need jsonData). */
const TABLE_OPTIONS = ['offset', 'exclude_items', 'allow_items', 'diversify', 'rules', 'pins'] as const;
/** Options only jsonData carries: in a table's meta.tags they are refused, not echoed back as if honoured. */
const JSON_ONLY_OPTIONS = ['explain', 'similar_to', 'items', 'weights'] as const;

function tagOptions(tags: Record<string, JsonValue>, ctx: Ctx): OptionsJson {
  const picked: Record<string, JsonValue> = {};
  for (const key of TABLE_OPTIONS) if (tags[key] !== undefined) picked[key] = key === 'offset' ? tagNumber(tags, key)! : tags[key];
  if (Object.keys(picked).length > 0) validate('RecommendRequest', { user_id: 'x', ...picked }, 'meta.tags', ctx.bounds);
  return picked as OptionsJson;
}

/** A value as a refusal shows it: numbers as written (NaN and Infinity, which JSON text shows as null), others quoted. */
function numberText(v: unknown): string {
  return typeof v === 'number' ? String(v) : quote(v);
}

function describeType(v: unknown): string {
  return Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v;
}

// ---- encoding ---------------------------------------------------------------------------------

/** The jsonData answer: also what strData/binData carry as JSON text. */
export function resultJson(out: PredictOutput): JsonValue {
  if (out.op === 'pairs') return { scores: out.scores };
  const answer: Record<string, JsonValue> =
    out.op === 'similar'
      ? { similar_to: out.similar.similarTo, strategy: 'similar_items', items: out.similar.items.map(itemJson) }
      : {
          recommendations: out.recommendations.map((rec) => ({
            // An anonymous session has no user to name.
            ...(rec.userId === '' ? {} : { user_id: rec.userId }),
            strategy: rec.strategy,
            items: rec.items.map(itemJson),
          })),
        };
  const nothing = nothingMatched(out);
  if (nothing) Object.assign(answer, nothing);
  return answer;
}

/** When a filter or allow_items left nothing to answer: says so, with how many items they allowed (0: none matched at all). */
export function nothingMatched(out: PredictOutput): { nothing_matched: true; filter_allowed: number } | null {
  return out.op !== 'pairs' && out.restriction?.nothingMatched ? { nothing_matched: true, filter_allowed: out.restriction.allowed } : null;
}

function itemJson(it: RecommendedItem): Record<string, JsonValue> {
  const item: Record<string, JsonValue> = { item_id: it.itemId, score: it.score };
  if (it.rating !== undefined) item.rating = it.rating;
  if (it.because !== undefined) item.because = typeof it.because === 'string' ? it.because : (it.because.map(becauseJson) as JsonValue[]);
  // Catalog fields follow, and never shadow the id, the score or the explanation.
  if (it.fields) for (const [key, v] of Object.entries(it.fields)) if (!(key in item)) item[key] = v as JsonValue;
  return item;
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
  if (out.op === 'similar') throw badData('similar items answer in jsonData, strData or binData');
  const rows: (string | number)[][] = [];
  // Ranks count from the top of the list, so the rows of page 2 continue page 1's.
  for (const rec of out.recommendations) {
    rec.items.forEach((it, r) => rows.push([rec.userId, it.itemId, it.score, (out.offset ?? 0) + r + 1]));
  }
  if (kind === 'ndarray') return { names: LONG_FORM_NAMES, ndarray: rows };
  const values: number[] = [];
  for (const row of rows) {
    for (const [c, v] of row.entries()) {
      const n = Number(v);
      if (!Number.isFinite(n)) throw badData(`a tensor answer carries numbers only, but ${LONG_FORM_NAMES[c]} ${quote(v)} is not numeric; send data.ndarray`);
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
