// Seldon feedback payloads → what was shown and what was chosen (core ShownLists and item ids). Pure
// functions: the learner decides where the shown lists come from (its memory, else these payloads) and
// which items count (the catalog's). What a client claims about how a list was made (`strategy`,
// `cold_start_users`, `exploration`) is never read: the strategy follows from whether the model knows
// the user, so a client cannot make its claims look like bandit impressions.
import type { ModelParams } from '../../config/index.js';
import { badData, RecserveError } from '../../errors.js';
import { limitHint, type Limits } from '../../config/limits.js';
import type { Recommender } from '../../model/recommender.js';
import { decodePredict, idOf, ITEM_COLUMN_NAMES, tensorRows, USER_COLUMN_NAMES } from './codec.js';
import { parseJsonText } from '../json.js';
import type { JsonValue, SeldonMessage } from './messages.js';
import type { ShownList } from '../../core/types.js';

// Truth and responses may also name the item column item_ids.
const ITEM_COLUMNS = [...ITEM_COLUMN_NAMES, 'item_ids'];
const USER_COLUMNS = USER_COLUMN_NAMES;

/**
 * The lists a prediction showed, read from the feedback's request and response payloads (for
 * feedback about a prediction this server no longer remembers). Null when neither names a user.
 */
export function listsFromPayloads(
  request: SeldonMessage | undefined,
  response: SeldonMessage | undefined,
  model: Recommender,
  params: ModelParams,
  limits: Limits,
  maxRows: number,
): ShownList[] | null {
  // What the server would have done for this user: a folded-in user is ranked personally too.
  const strategyOf = (u: string): ShownList['strategy'] => model.strategyFor(u);
  let requested: ReturnType<typeof decodePredict>['input'] | null = null;
  if (request && hasPayload(request)) {
    try {
      requested = decodePredict(request, params, limits).input;
    } catch (e) {
      if (e instanceof RecserveError) throw badData(`feedback request: ${e.message}`);
      throw e;
    }
  }
  if (requested?.op === 'similar' || (requested?.op === 'recommend' && requested.request.users.length === 0)) throw badData(`feedback request: ${NO_USER}`);
  if (requested?.op === 'pairs') {
    const byUser = new Map<string, string[]>();
    for (const [u, i] of requested.pairs) byUser.set(u, [...(byUser.get(u) ?? []), i]);
    return [...byUser].map(([userId, items]) => ({ userId, strategy: 'pairs' as const, items, explored: null }));
  }
  const shown = response && hasPayload(response) ? shownInResponse(response, requested?.op === 'recommend' ? requested.request.users : null, strategyOf, limits, maxRows) : null;
  if (shown) return shown;
  if (requested?.op === 'recommend') {
    // No response payload: only `truth` can say which items the feedback is about.
    return requested.request.users.map((userId) => ({ userId, strategy: strategyOf(userId), items: [], explored: null }));
  }
  return null;
}

/** Whether a message carries a payload feedback can read (customData is not one). */
export function hasPayload(m: SeldonMessage): boolean {
  return m.data !== undefined || m.jsonData !== undefined || m.strData !== undefined || m.binData !== undefined;
}

function shownInResponse(res: SeldonMessage, users: string[] | null, strategyOf: (u: string) => ShownList['strategy'], limits: Limits, maxRows: number): ShownList[] | null {
  if (res.jsonData !== undefined) return fromResultJson(res.jsonData, strategyOf, limits, maxRows);
  if (res.strData !== undefined) return fromResultJson(parseText(res.strData, 'feedback response strData', limits), strategyOf, limits, maxRows);
  if (res.binData !== undefined) return fromResultJson(parseText(Buffer.from(res.binData, 'base64').toString('utf8'), 'feedback response binData', limits), strategyOf, limits, maxRows);
  const data = res.data;
  if (!data) return null;
  const rows = tableRows(data, 'feedback response', maxRows, 'shown items', MAX_ROWS_HINT, limits);
  const names = (data.names ?? []).map((n) => n.toLowerCase());
  const ic = names.findIndex((n) => ITEM_COLUMNS.includes(n));
  if (ic < 0) {
    if (names.length === 1 && names[0] === 'score') return null; // a pair-score answer: the request names the pairs
    throw badData('feedback response: data needs an item_id column (the long form a recommendation answer has)');
  }
  const uc = names.findIndex((n) => USER_COLUMNS.includes(n));
  const lists = new Map<string, ShownList>();
  rows.forEach((row, r) => {
    const userId = uc >= 0 ? idOf(row[uc], `feedback response row ${r}`, limits) : users?.length === 1 ? users[0] : null;
    if (userId === null) throw badData('feedback response: the table has no user_id column and the request does not name exactly one user');
    const l = lists.get(userId) ?? { userId, strategy: strategyOf(userId), items: [], explored: null };
    l.items.push(idOf(row[ic], `feedback response row ${r}`, limits));
    lists.set(userId, l);
  });
  return [...lists.values()];
}

function fromResultJson(json: JsonValue, strategyOf: (u: string) => ShownList['strategy'], limits: Limits, maxRows: number): ShownList[] | null {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw badData('feedback response: jsonData must be a recommendation answer {recommendations: [...]}');
  const recs = (json as { recommendations?: JsonValue }).recommendations;
  if (recs === undefined) {
    if ((json as { scores?: JsonValue }).scores !== undefined) return null; // pair scores: the request names the pairs
    if ((json as { similar_to?: JsonValue }).similar_to !== undefined) throw badData(`feedback response: ${NO_USER}`);
    throw badData('feedback response: jsonData has no recommendations');
  }
  if (!Array.isArray(recs)) throw badData('feedback response: jsonData.recommendations must be a list');
  let total = 0;
  return recs.map((rec, r) => {
    const o = rec as { user_id?: JsonValue; items?: JsonValue };
    if (typeof o !== 'object' || o === null || !Array.isArray(o.items)) throw badData(`feedback response: recommendations/${r} needs user_id and items`);
    if (o.user_id === undefined || o.user_id === null) throw badData(`feedback response: recommendations/${r}: ${NO_USER}`);
    total += o.items.length;
    if (total > maxRows) throw badData(`feedback response: more than ${maxRows} items shown in all${MAX_ROWS_HINT(maxRows)}`);
    const userId = idOf(o.user_id ?? null, `feedback response: recommendations/${r}/user_id`, limits);
    const items = o.items.map((it, j) =>
      idOf(typeof it === 'object' && it !== null && !Array.isArray(it) ? ((it as { item_id?: JsonValue }).item_id ?? null) : it, `feedback response: recommendations/${r}/items/${j}`, limits),
    );
    return { userId, strategy: strategyOf(userId), items, explored: null };
  });
}

/**
 * Item ids named by `truth`: a table (an item_id column, or one column of ids), a tensor of ids,
 * jsonData as a list of ids, {item_id}, {item_ids: [...]}, {items: [...]} or a recommendation answer,
 * or strData as JSON or comma-separated ids. At most limits.maxTruthItems ids, counted before they are read.
 */
export function parseTruth(truth: SeldonMessage, limits: Limits): string[] {
  const max = limits.maxTruthItems;
  const tooMany = (n: number) => badData(`truth names ${n > max ? `more than ${max}` : n} items; at most ${max}${limitHint(limits, 'maxTruthItems')}`);
  if (truth.jsonData !== undefined) return idsFromJson(truth.jsonData, 'truth.jsonData', limits, { left: max, tooMany });
  if (truth.strData !== undefined) {
    const t = truth.strData.trim();
    if (t.startsWith('[') || t.startsWith('{') || t.startsWith('"')) return idsFromJson(parseText(t, 'truth.strData', limits), 'truth.strData', limits, { left: max, tooMany });
    if (t.length === 0) return [];
    let commas = 0;
    for (let i = t.indexOf(','); i >= 0 && commas < max; i = t.indexOf(',', i + 1)) commas++;
    if (commas >= max) throw tooMany(max + 1);
    return t.split(',').map((s, j) => idOf(s.trim(), `truth.strData/${j}`, limits));
  }
  if (truth.binData !== undefined) {
    if (truth.binData.length > 4 * Math.ceil(((limits.maxIdLength + 1) * max) / 3) + 4) throw tooMany(max + 1);
    return parseTruth({ strData: Buffer.from(truth.binData, 'base64').toString('utf8') }, limits);
  }
  if (truth.data !== undefined) {
    const rows = tableRows(truth.data, 'truth', max, 'truth rows', () => limitHint(limits, 'maxTruthItems'), limits);
    const names = (truth.data.names ?? []).map((n) => n.toLowerCase());
    let col = names.findIndex((n) => ITEM_COLUMNS.includes(n));
    if (col < 0) {
      if (rows.some((r) => r.length !== 1)) throw badData('truth: a table with several columns needs an item_id column name');
      col = 0;
    }
    return rows.map((row, r) => idOf(row[col], `truth row ${r}`, limits));
  }
  throw badData('truth carries no payload; name the chosen items in data, jsonData or strData');
}

interface TruthBudget {
  left: number;
  tooMany: (n: number) => Error;
}

function idsFromJson(v: JsonValue, where: string, limits: Limits, budget: TruthBudget): string[] {
  const take = (n: number) => {
    if (n > budget.left) throw budget.tooMany(limits.maxTruthItems + 1);
    budget.left -= n;
  };
  if (Array.isArray(v)) {
    take(v.length);
    return v.map((x, j) => (typeof x === 'object' && x !== null && !Array.isArray(x) ? idOf((x as { item_id?: JsonValue }).item_id ?? null, `${where}/${j}/item_id`, limits) : idOf(x, `${where}/${j}`, limits)));
  }
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, JsonValue>;
    if (o.item_id !== undefined) {
      take(1);
      return [idOf(o.item_id, `${where}/item_id`, limits)];
    }
    if (o.item_ids !== undefined) return idsFromJson(o.item_ids, `${where}/item_ids`, limits, budget);
    if (o.items !== undefined) return idsFromJson(o.items, `${where}/items`, limits, budget);
    if (Array.isArray(o.recommendations)) {
      return o.recommendations.flatMap((r, j) => {
        const items = (r as { items?: JsonValue })?.items ?? [];
        // One level only: a recommendation's items are ids or {item_id}, never further recommendations.
        if (!Array.isArray(items)) throw badData(`${where}/recommendations/${j}/items must be a list`);
        return idsFromJson(items, `${where}/recommendations/${j}/items`, limits, budget);
      });
    }
    throw badData(`${where}: name the chosen items as a list, {item_id}, {item_ids: [...]} or {items: [...]}`);
  }
  take(1);
  return [idOf(v, where, limits)];
}

/** Feedback teaches a user's model; these answers have no user to teach. */
const NO_USER = 'feedback is about a user; similar-items answers and anonymous sessions name none';

/** RECSERVE_FEEDBACK_MAX_ROWS bounds what a feedback may say was shown. */
const MAX_ROWS_HINT = (max: number) => ` (limit RECSERVE_FEEDBACK_MAX_ROWS=${max})`;

/** Rows of a table payload, refused above maxRows before any row is built. */
function tableRows(data: NonNullable<SeldonMessage['data']>, where: string, maxRows: number, what: string, hint: (max: number) => string, limits: Limits): JsonValue[][] {
  if (data.tensor) {
    const n = Array.isArray(data.tensor.shape) ? data.tensor.shape[0] : 0;
    if (Number.isSafeInteger(n) && n > maxRows) throw badData(`${where}: ${n} ${what}; at most ${maxRows}${hint(maxRows)}`);
    return tensorRows(data.tensor, limits, `${where}.data.tensor`);
  }
  if (data.ndarray) {
    if (data.ndarray.length > maxRows) throw badData(`${where}: ${data.ndarray.length} ${what}; at most ${maxRows}${hint(maxRows)}`);
    return data.ndarray.map((row) => (Array.isArray(row) ? row : [row]));
  }
  throw badData(`${where}: data needs ndarray or tensor`);
}

/** JSON text inside a payload, with the same depth and size checks as a body (protocol/json.ts). */
function parseText(text: string, where: string, limits: Limits): JsonValue {
  return parseJsonText(text, where, limits.maxJsonDepth, '', limits.maxJsonValues) as JsonValue;
}


