// Open Inference Protocol V2 tensors ⇄ the core's calls. The recommender as tensors:
//   inputs   user_id  BYTES (or INT64) [n]   → top-k per user (recommend)
//            item_id  BYTES (or INT64) [n]   → with user_id: the score of each (user, item) pair
//   outputs  recommend: item_id BYTES [n, w], score FP32 [n, w], strategy BYTES [n], count INT64 [n]
//            pairs:     score FP32 [n]
// w is the longest list's length; shorter rows are padded with "" and 0, and `count` gives each
// row's real length. Options are request parameters (k, exclude_seen, filter, explore), bounded
// exactly as the Seldon v1 routes bound them (config.params, config.limits), before any allocation.
// Decoding starts from the neutral tensors of tensors.ts, so REST JSON, the binary extension and
// gRPC share it.
import type { ModelParams } from '../../config/index.js';
import { limitHint, type Limits } from '../../config/limits.js';
import type { PredictInput, PredictOutput } from '../../core/types.js';
import { badData, quote } from '../../errors.js';
import type { FilterValue, RecommendedItem, RecommendRequest } from '../../model/recommender.js';
import { becauseJson, checkFilter, checkSimilarTo, itemOptions, recommendOptions, RECOMMEND_ONLY, similarItems, type JsonId, type OptionsJson } from '../../core/request-options.js';
import { boundsOf, validate } from '../contract.js';
import { parseJsonText } from '../json.js';
import { decodeBytes, decodeInt64, utf8Text } from './binary.js';
import { elementCount, type InferRequest, type InputTensor, type OutputTensor, type Parameters, type RequestedOutput } from './tensors.js';

export const USER_INPUT = 'user_id';
export const ITEM_INPUT = 'item_id';
/** Datatypes an id input may have. */
export const ID_DATATYPES = ['BYTES', 'INT64'] as const;

/** Answered unless outputs are asked: these, plus because with explain. */
export const RECOMMEND_OUTPUTS = ['item_id', 'score', 'strategy', 'count'] as const;
/** Outputs a recommendation answers when asked: the clamped rating (explicit models), each item's explanation as JSON text (with explain). */
export const OPTIONAL_OUTPUTS = ['rating', 'because'] as const;
export const PAIR_OUTPUTS = ['score'] as const;
export type OutputName = (typeof RECOMMEND_OUTPUTS)[number] | (typeof OPTIONAL_OUTPUTS)[number];

/** Output lists the request did not ask for: `because` is added to them when the answer explains. */
const defaulted = new WeakSet<RequestedOutput[]>();

/** V2 parameters holding a list or an object: gRPC parameters are scalars, so those arrive as JSON text. */
const JSON_PARAMETERS = ['exclude_items', 'allow_items', 'items', 'weights', 'diversify', 'rules', 'pins'] as const;

/** A JSON number at or above this has lost its last digits in JSON.parse. */
const JSON_SAFE = Number.MAX_SAFE_INTEGER;
const JSON_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export interface DecodedInfer {
  input: PredictInput;
  /** The outputs to answer, in the order asked (all of the operation's when none were asked). */
  outputs: RequestedOutput[];
}

// ---- the REST JSON body → neutral tensors ------------------------------------------------------

const REQUEST_KEYS = new Set(['id', 'parameters', 'inputs', 'outputs']);
const INPUT_KEYS = new Set(['name', 'datatype', 'shape', 'parameters', 'data']);
const OUTPUT_KEYS = new Set(['name', 'parameters']);

/** The inference request of a JSON body, checked for its structure (meaning is decodeInfer's). */
export function readInferRequest(value: unknown, limits: Limits): InferRequest {
  const body = objectAt(value, 'the inference request');
  unknownKeys(body, REQUEST_KEYS, 'the inference request');
  const req: InferRequest = { inputs: [] };
  if (body.id !== undefined) {
    if (typeof body.id !== 'string') throw badData(`id must be a string, got ${describe(body.id)}`);
    if (body.id.length > limits.maxIdLength) throw badData(`id is ${body.id.length} characters; at most ${limits.maxIdLength}${limitHint(limits, 'maxIdLength')}`);
    req.id = body.id;
  }
  if (body.parameters !== undefined) req.parameters = objectAt(body.parameters, 'parameters');
  // Empty only for similar items or an anonymous session, which name their items in parameters.
  const itemsInParameters = req.parameters?.similar_to !== undefined || req.parameters?.items !== undefined;
  if (!Array.isArray(body.inputs) || (body.inputs.length === 0 && !itemsInParameters)) {
    throw badData(`inputs must be a non-empty list of tensors (or empty, with parameters.similar_to or parameters.items), got ${describe(body.inputs)}`);
  }
  req.inputs = body.inputs.map((raw, i) => {
    const where = `inputs/${i}`;
    const t = objectAt(raw, where);
    unknownKeys(t, INPUT_KEYS, where);
    if (typeof t.name !== 'string') throw badData(`${where}/name must be a string, got ${describe(t.name)}`);
    if (typeof t.datatype !== 'string') throw badData(`${where}/datatype must be a string, got ${describe(t.datatype)}`);
    if (!Array.isArray(t.shape)) throw badData(`${where}/shape must be a list of dimensions, got ${describe(t.shape)}`);
    const input: InputTensor = { name: t.name, datatype: t.datatype, shape: t.shape as number[] };
    if (t.parameters !== undefined) input.parameters = objectAt(t.parameters, `${where}/parameters`);
    if (t.data !== undefined) input.data = t.data;
    return input;
  });
  if (body.outputs !== undefined) {
    if (!Array.isArray(body.outputs)) throw badData(`outputs must be a list of {name}, got ${describe(body.outputs)}`);
    req.outputs = body.outputs.map((raw, i) => {
      const where = `outputs/${i}`;
      const o = objectAt(raw, where);
      unknownKeys(o, OUTPUT_KEYS, where);
      if (typeof o.name !== 'string') throw badData(`${where}/name must be a string, got ${describe(o.name)}`);
      return o.parameters === undefined ? { name: o.name } : { name: o.name, parameters: objectAt(o.parameters, `${where}/parameters`) };
    });
  }
  return req;
}

// ---- neutral tensors → a core call -------------------------------------------------------------

export function decodeInfer(req: InferRequest, params: ModelParams, limits: Limits): DecodedInfer {
  let user: InputTensor | null = null;
  let item: InputTensor | null = null;
  for (const input of req.inputs) {
    if (input.name === USER_INPUT && user === null) user = input;
    else if (input.name === ITEM_INPUT && item === null) item = input;
    else if (input.name === USER_INPUT || input.name === ITEM_INPUT) throw badData(`input ${quote(input.name)} is given more than once`);
    else throw badData(`unknown input ${quote(input.name)}; this model takes ${USER_INPUT} (recommend) and optionally ${ITEM_INPUT} (score pairs)`);
  }
  const p = req.parameters ?? {};
  if (user === null) {
    if (item !== null || (p.similar_to === undefined && p.items === undefined)) {
      throw badData(`the request needs a ${USER_INPUT} input (BYTES or INT64, shape [n]), or parameters.similar_to (similar items) or parameters.items (an anonymous session)`);
    }
    return recommendInfer(req, [], params, limits);
  }
  const n = rowsOf(user, limits);
  if (item === null) {
    if (n > params.max_users) throw badData(`${USER_INPUT} has ${n} users; at most ${params.max_users} per request (graph parameter max_users)`);
    return recommendInfer(req, idsOf(user, n, limits), params, limits);
  }
  const m = rowsOf(item, limits);
  if (m !== n) throw badData(`${ITEM_INPUT} has ${m} rows but ${USER_INPUT} has ${n}; pair scoring needs one item per user`);
  if (n > limits.maxPairs) throw badData(`${n} pairs in one request; at most ${limits.maxPairs}${limitHint(limits, 'maxPairs')}`);
  const other = RECOMMEND_ONLY.find((key) => p[key] !== undefined);
  if (other) throw badData(`parameters.${other} is a recommendation option; pair scoring takes none`);
  const users = idsOf(user, n, limits);
  const items = idsOf(item, n, limits);
  const pairs = users.map((u, r) => [u, items[r]] as [string, string]);
  return { input: { op: 'pairs', pairs }, outputs: selectOutputs(req.outputs, PAIR_OUTPUTS, 'pair scoring') };
}

/** Recommendations for the users of the user_id input, similar items, or a session (parameters say which). */
function recommendInfer(req: InferRequest, users: string[], params: ModelParams, limits: Limits): DecodedInfer {
  const p = req.parameters ?? {};
  const request = recommendRequest(users, p, params, limits);
  const options = optionParams(p, users.length > 0, params, limits);
  const id = (v: JsonId, at: string) => paramId(v, at, limits);
  const item = itemOptions(options, request.k, request.filter, id, 'parameters');
  if (options.similar_to !== undefined) {
    if (options.explain !== undefined || request.explore !== undefined) throw badData('parameters.similar_to asks for similar items; explain and explore are for recommendations');
    return { input: { op: 'similar', request: { ...item, items: similarItems(options, id, 'parameters') } }, outputs: selectOutputs(req.outputs, RECOMMEND_OUTPUTS, 'similar items') };
  }
  return { input: { op: 'recommend', request: recommendOptions(options, { ...request, ...item }, id, 'parameters') }, outputs: selectOutputs(req.outputs, RECOMMEND_OUTPUTS, 'recommend', OPTIONAL_OUTPUTS) };
}

/**
 * The recommendation options among the parameters, in the JSON shape of v1's jsonData (lists and objects
 * from their JSON text when gRPC carried them as strings), checked against the same contract.
 */
function optionParams(p: Parameters, hasUser: boolean, params: ModelParams, limits: Limits): OptionsJson {
  const options: Record<string, unknown> = {};
  for (const key of JSON_PARAMETERS) {
    const v = p[key];
    if (v !== undefined) options[key] = typeof v === 'string' ? parseJsonText(v, `parameters.${key}`, limits.maxJsonDepth, '', limits.maxJsonValues) : v;
  }
  // One id, or a list as JSON text ("[...]"); gRPC's int64_param arrives as a bigint.
  const q = p.similar_to;
  if (q !== undefined) options.similar_to = typeof q === 'string' && q.trimStart().startsWith('[') ? parseJsonText(q, 'parameters.similar_to', limits.maxJsonDepth, '', limits.maxJsonValues) : typeof q === 'bigint' ? String(q) : q;
  checkSimilarTo(options.similar_to, limits, 'parameters.similar_to');
  const offset = wholeParam(p.offset, 'offset');
  if (offset !== undefined) options.offset = offset;
  if (p.explain !== undefined) options.explain = p.explain;
  if (Object.keys(options).length === 0) return {};
  // Checked as a jsonData request would be, its user standing for the user_id input.
  validate('RecommendRequest', hasUser ? { user_id: 'x', ...options } : options, 'parameters', boundsOf({ params, limits }));
  return options as OptionsJson;
}

/** An id from a parameter: a string, or a whole number (its decimal text). */
function paramId(v: JsonId, at: string, limits: Limits): string {
  if (typeof v === 'string') {
    checkIdText(v, at, limits);
    return v;
  }
  return int64Id(v, at);
}

/**
 * The rows of an id input: shape [n] (or [n, 1]), each dimension a whole number within the tensor
 * limit and their product too, checked before the data is looked at.
 */
function rowsOf(t: InputTensor, limits: Limits): number {
  const { shape } = t;
  const where = `input ${quote(t.name)}`;
  if (!(ID_DATATYPES as readonly string[]).includes(t.datatype)) {
    throw badData(`${where} has datatype ${quote(t.datatype)}; ids are ${ID_DATATYPES.join(' or ')}`);
  }
  if (shape.length === 0 || shape.length > 2) throw badData(`${where} has shape ${quote(shape)}; ids are shape [n] (or [n, 1])`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw badData(`${where} has shape ${quote(shape)}; dimensions are whole numbers ≥ 0`);
    if (d > limits.maxTensorValues) throw badData(`${where} has shape ${quote(shape)}, a dimension above ${limits.maxTensorValues}${limitHint(limits, 'maxTensorValues')}`);
  }
  if (shape.length === 2 && shape[1] !== 1) throw badData(`${where} has shape ${quote(shape)}; ids are shape [n] (or [n, 1])`);
  if (elementCount(shape) > limits.maxTensorValues) throw badData(`${where} has shape ${quote(shape)}: more than ${limits.maxTensorValues} values${limitHint(limits, 'maxTensorValues')}`);
  if (shape[0] === 0) throw badData(`${where} is empty; send at least one id`);
  return shape[0];
}

/** The ids of an input, from its JSON data or its bytes: exactly n of them, each a valid id. */
function idsOf(t: InputTensor, n: number, limits: Limits): string[] {
  const where = `input ${quote(t.name)}`;
  if (t.raw !== undefined) {
    // A UTF-8 character is at most 4 bytes: longer elements cannot be ids of maxIdLength characters.
    const ids = t.datatype === 'BYTES' ? decodeBytes(t.raw, n, limits.maxIdLength * 4, where) : decodeInt64(t.raw, n, where).map(String);
    ids.forEach((id, i) => checkIdText(id, `${where} element ${i}`, limits));
    return ids;
  }
  if (t.data === undefined) throw badData(`${where} has no data (send data, or parameters.binary_data_size with the binary extension)`);
  const elements = flatten(t.data, n, where);
  return elements.map((v, i) => (t.datatype === 'BYTES' ? bytesId(v, `${where} element ${i}`, limits) : int64Id(v, `${where} element ${i}`)));
}

/** Row-major elements of flat or nested data, refusing as soon as they exceed `count`. */
function flatten(data: unknown, count: number, where: string): unknown[] {
  if (!Array.isArray(data)) throw badData(`${where}: data must be a list (flat or nested), got ${describe(data)}`);
  const out: unknown[] = [];
  const stack: { list: unknown[]; at: number }[] = [{ list: data, at: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.at === top.list.length) {
      stack.pop();
      continue;
    }
    const v = top.list[top.at++];
    if (Array.isArray(v)) {
      stack.push({ list: v, at: 0 });
      continue;
    }
    if (out.length === count) throw badData(`${where}: data holds more than the ${count} values its shape says`);
    out.push(v);
  }
  if (out.length !== count) throw badData(`${where}: data holds ${out.length} values but its shape says ${count}`);
  return out;
}

/** A BYTES element: a JSON string, or the bytes gRPC's bytes_contents carries (UTF-8 ids). */
function bytesId(v: unknown, at: string, limits: Limits): string {
  if (v instanceof Uint8Array) {
    if (v.length > limits.maxIdLength * 4) throw badData(`${at} is ${v.length} bytes; an id is at most ${limits.maxIdLength} characters${limitHint(limits, 'maxIdLength')}`);
    return bytesId(utf8Text(v, at), at, limits);
  }
  if (typeof v !== 'string') throw badData(`${at} is ${describe(v)}; a BYTES element is a string (send numeric ids as INT64)`);
  checkIdText(v, at, limits);
  return v;
}


function checkIdText(id: string, at: string, limits: Limits): void {
  if (id.length === 0) throw badData(`${at} is empty; an id is a non-empty string`);
  if (id.length > limits.maxIdLength) throw badData(`${at} is ${id.length} characters; an id is at most ${limits.maxIdLength}${limitHint(limits, 'maxIdLength')}`);
}

/** INT64 ids: whole JSON numbers within 2^53 (beyond it JSON has already changed the digits), or gRPC's bigints. */
function int64Id(v: unknown, at: string): string {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'bigint' && v >= INT64_MIN && v <= INT64_MAX) return String(v);
  if (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) > JSON_SAFE) {
    throw badData(`${at} is beyond 2^53: a JSON number that large loses digits; send such ids as BYTES strings or with the binary extension`);
  }
  throw badData(`${at} is ${describe(v)}; an INT64 element is a whole number`);
}

function recommendRequest(users: string[], p: Parameters, params: ModelParams, limits: Limits): RecommendRequest {
  const k = wholeParam(p.k, 'k') ?? params.k;
  if (k < 1) throw badData(`parameters.k must be ≥ 1, got ${k}`);
  if (k > params.max_k) throw badData(`parameters.k=${k} is larger than max_k=${params.max_k} (graph parameter max_k)`);
  if (p.exclude_seen !== undefined && typeof p.exclude_seen !== 'boolean') throw badData(`parameters.exclude_seen must be true or false, got ${quote(p.exclude_seen)}`);
  const request: RecommendRequest = { users, k, excludeSeen: p.exclude_seen ?? params.exclude_seen, filter: filterParam(p.filter, params, limits) };
  const explore = wholeParam(p.explore, 'explore');
  if (explore !== undefined) {
    if (explore < 0) throw badData(`parameters.explore must be ≥ 0, got ${explore}`);
    if (explore > k) throw badData(`parameters.explore=${explore} is larger than k=${k}`);
    request.explore = explore;
  }
  return request;
}

/** A whole-number parameter: a JSON number, or decimal text (what a string parameter can carry). */
function wholeParam(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  // gRPC's int64_param arrives as a bigint.
  if (typeof v === 'bigint' && v >= -JSON_SAFE_BIG && v <= JSON_SAFE_BIG) return Number(v);
  if (typeof v === 'string' && /^-?\d{1,15}$/.test(v.trim())) return Number(v.trim());
  if ((typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint') throw badData(`parameters.${name} must be a whole number within ±(2^53 − 1), got ${String(v)} (too large)`);
  if (typeof v === 'number') throw badData(`parameters.${name} must be a whole number, got ${String(v)}`); // NaN and Infinity, which JSON text would show as null
  throw badData(`parameters.${name} must be a whole number, got ${describe(v)}`);
}

/**
 * The filter: a JSON object, or its JSON text (gRPC parameters are scalars). Checked against the same
 * contract as v1's jsonData filter (fields, value sizes), then its accepted values are counted.
 */
function filterParam(v: unknown, params: ModelParams, limits: Limits): Record<string, FilterValue> | null {
  if (v === undefined) return null;
  const filter = typeof v === 'string' ? parseJsonText(v, 'parameters.filter', limits.maxJsonDepth, '', limits.maxJsonValues) : v;
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) throw badData(`parameters.filter must be an object {field: value or [values]} (or its JSON text), got ${describe(filter)}`);
  validate('RecommendRequest', { user_id: 'x', filter }, 'parameters', boundsOf({ params, limits }));
  checkFilter(filter as Record<string, FilterValue>, limits, 'parameters.filter');
  return filter as Record<string, FilterValue>;
}

function selectOutputs(asked: RequestedOutput[] | undefined, known: readonly string[], op: string, optional: readonly string[] = []): RequestedOutput[] {
  if (asked === undefined || asked.length === 0) {
    const all = known.map((name) => ({ name }));
    defaulted.add(all);
    return all;
  }
  const seen = new Set<string>();
  for (const o of asked) {
    if (!known.includes(o.name) && !optional.includes(o.name)) throw badData(`unknown output ${quote(o.name)}; ${op} answers ${[...known, ...optional].join(', ')}`);
    if (seen.has(o.name)) throw badData(`output ${quote(o.name)} is asked more than once`);
    seen.add(o.name);
  }
  return asked;
}

// ---- a core answer → output tensors ------------------------------------------------------------

/**
 * The asked outputs of a prediction, in the order asked; when none were asked, the four recommendation
 * outputs, and `because` with explain. Scores are FP32: the core's 6-digit scores rounded to single
 * precision, so REST JSON and gRPC's fp32_contents carry the same float.
 */
export function encodeInfer(output: PredictOutput, asked: RequestedOutput[]): OutputTensor[] {
  if (output.op === 'pairs') return asked.map(() => ({ name: 'score', datatype: 'FP32', shape: [output.scores.length], data: output.scores.map(Math.fround) }));
  const rows = output.op === 'similar' ? [{ strategy: 'similar_items', items: output.similar.items }] : output.recommendations;
  const all = recommendTensors(rows);
  let names = asked.map((o) => o.name as OutputName);
  if (defaulted.has(asked) && all.because !== null) names = [...names, 'because'];
  const tensors = names.map((name) => {
    const t = all[name];
    if (t === null) throw badData(`output ${quote(name)} is not in this answer (${name === 'rating' ? 'the model is not explicit' : 'ask with parameters.explain'})`);
    return t;
  });
  // A filter or allow_items that left nothing: said on the first output, with how many items they allowed.
  if (output.restriction?.nothingMatched && tensors.length > 0) tensors[0] = { ...tensors[0], parameters: { nothing_matched: true, filter_allowed: output.restriction.allowed } };
  return tensors;
}

function recommendTensors(recs: { strategy: string; items: RecommendedItem[] }[]): Record<OutputName, OutputTensor | null> {
  const n = recs.length;
  let width = 0;
  let rated = false;
  let explained = false;
  for (const r of recs) {
    width = Math.max(width, r.items.length);
    for (const it of r.items) {
      rated ||= it.rating !== undefined;
      explained ||= it.because !== undefined;
    }
  }
  const ids: string[] = new Array(n * width).fill('');
  const scores: number[] = new Array(n * width).fill(0);
  const ratings: number[] | null = rated ? new Array(n * width).fill(0) : null;
  const reasons: string[] | null = explained ? new Array(n * width).fill('') : null;
  recs.forEach((r, row) => {
    r.items.forEach((it, j) => {
      const at = row * width + j;
      ids[at] = it.itemId;
      scores[at] = Math.fround(it.score);
      // An exploration item in a personalized row has no rating: 0 like the padding.
      if (ratings) ratings[at] = Math.fround(it.rating ?? 0);
      if (reasons && it.because !== undefined) reasons[at] = JSON.stringify(typeof it.because === 'string' ? it.because : it.because.map(becauseJson));
    });
  });
  return {
    item_id: { name: 'item_id', datatype: 'BYTES', shape: [n, width], data: ids },
    score: { name: 'score', datatype: 'FP32', shape: [n, width], data: scores },
    strategy: { name: 'strategy', datatype: 'BYTES', shape: [n], data: recs.map((r) => r.strategy) },
    count: { name: 'count', datatype: 'INT64', shape: [n], data: recs.map((r) => r.items.length) },
    rating: ratings && { name: 'rating', datatype: 'FP32', shape: [n, width], data: ratings },
    because: reasons && { name: 'because', datatype: 'BYTES', shape: [n, width], data: reasons },
  };
}

// ---- helpers -----------------------------------------------------------------------------------

function objectAt(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badData(`${where} must be a JSON object, got ${describe(v)}`);
  return v as Record<string, unknown>;
}

/** Refuses a field the object may not have, naming the ones it may. */
export function unknownKeys(o: Record<string, unknown>, known: Set<string>, where: string): void {
  for (const key of Object.keys(o)) if (!known.has(key)) throw badData(`${where}: unknown field ${quote(key)} (allowed: ${[...known].join(', ')})`);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${quote(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${quote(typeof v === 'bigint' ? String(v) : v)}`;
  return typeof v === 'object' ? 'an object' : typeof v;
}
