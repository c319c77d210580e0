// Feedback payloads → what was shown and what was chosen → interaction rows. Pure functions: the
// handler decides where the shown lists come from (the prediction memory, else these payloads).
import type { ModelParams } from '../config.js';
import { badData, RecserveError } from '../errors.js';
import type { Recommender } from '../model/recommender.js';
import { decodePredict } from '../protocol/codec.js';
import type { JsonValue, SeldonMessage } from '../protocol/seldon.js';
import type { ShownList } from './predictions.js';
import type { NewInteraction, ServedBy } from './store.js';

const ITEM_COLUMNS = ['item_id', 'item', 'items', 'iid', 'item_ids'];
const USER_COLUMNS = ['user_id', 'user', 'users', 'uid'];

/**
 * The lists a prediction showed, read from the feedback's request and response payloads (for
 * feedback about a prediction this server no longer remembers). Null when neither names a user.
 */
export function listsFromPayloads(request: SeldonMessage | undefined, response: SeldonMessage | undefined, model: Recommender, params: ModelParams): ShownList[] | null {
  const strategyOf = (u: string): ShownList['strategy'] => (model.userIdx(u) === undefined ? 'cold_start' : 'personalized');
  let requested: ReturnType<typeof decodePredict>['input'] | null = null;
  if (request && hasPayload(request)) {
    try {
      requested = decodePredict(request, params).input;
    } catch (e) {
      if (e instanceof RecserveError) throw badData(`feedback request: ${e.message}`);
      throw e;
    }
  }
  if (requested?.op === 'pairs') {
    const byUser = new Map<string, string[]>();
    for (const [u, i] of requested.pairs) byUser.set(u, [...(byUser.get(u) ?? []), i]);
    return [...byUser].map(([userId, items]) => ({ userId, strategy: 'pairs' as const, items, explored: null }));
  }
  const shown = response && hasPayload(response) ? shownInResponse(response, requested?.op === 'recommend' ? requested.request.users : null, strategyOf) : null;
  if (shown) return shown;
  if (requested?.op === 'recommend') {
    // No response payload: only `truth` can say which items the feedback is about.
    return requested.request.users.map((userId) => ({ userId, strategy: strategyOf(userId), items: [], explored: null }));
  }
  return null;
}

function hasPayload(m: SeldonMessage): boolean {
  return m.data !== undefined || m.jsonData !== undefined || m.strData !== undefined || m.binData !== undefined;
}

function shownInResponse(res: SeldonMessage, users: string[] | null, strategyOf: (u: string) => ShownList['strategy']): ShownList[] | null {
  if (res.jsonData !== undefined) return fromResultJson(res.jsonData, strategyOf);
  if (res.strData !== undefined) return fromResultJson(parseText(res.strData, 'feedback response strData'), strategyOf);
  if (res.binData !== undefined) return fromResultJson(parseText(Buffer.from(res.binData, 'base64').toString('utf8'), 'feedback response binData'), strategyOf);
  const data = res.data;
  if (!data) return null;
  const rows = tableRows(data, 'feedback response');
  const names = (data.names ?? []).map((n) => n.toLowerCase());
  const ic = names.findIndex((n) => ITEM_COLUMNS.includes(n));
  if (ic < 0) {
    if (names.length === 1 && names[0] === 'score') return null; // a pair-score answer: the request names the pairs
    throw badData('feedback response: data needs an item_id column (the long form a recommendation answer has)');
  }
  const uc = names.findIndex((n) => USER_COLUMNS.includes(n));
  const cold = new Set(((res.meta?.tags?.cold_start_users as JsonValue[] | undefined) ?? []).map(String));
  const lists = new Map<string, ShownList>();
  rows.forEach((row, r) => {
    const userId = uc >= 0 ? idOf(row[uc], `feedback response row ${r}`) : users?.length === 1 ? users[0] : null;
    if (userId === null) throw badData('feedback response: the table has no user_id column and the request does not name exactly one user');
    const l = lists.get(userId) ?? { userId, strategy: cold.has(userId) ? 'cold_start' : strategyOf(userId), items: [], explored: null };
    l.items.push(idOf(row[ic], `feedback response row ${r}`));
    lists.set(userId, l);
  });
  return [...lists.values()];
}

function fromResultJson(json: JsonValue, strategyOf: (u: string) => ShownList['strategy']): ShownList[] | null {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw badData('feedback response: jsonData must be a recommendation answer {recommendations: [...]}');
  const recs = (json as { recommendations?: JsonValue }).recommendations;
  if (recs === undefined) {
    if ((json as { scores?: JsonValue }).scores !== undefined) return null; // pair scores: the request names the pairs
    throw badData('feedback response: jsonData has no recommendations');
  }
  if (!Array.isArray(recs)) throw badData('feedback response: jsonData.recommendations must be a list');
  return recs.map((rec, r) => {
    const o = rec as { user_id?: JsonValue; strategy?: JsonValue; items?: JsonValue };
    if (typeof o !== 'object' || o === null || !Array.isArray(o.items)) throw badData(`feedback response: recommendations/${r} needs user_id and items`);
    const userId = idOf(o.user_id ?? null, `feedback response: recommendations/${r}/user_id`);
    let explored: Set<string> | null = null;
    const items = o.items.map((it, j) => {
      const item = it as { item_id?: JsonValue; exploration?: JsonValue };
      const id = idOf(typeof it === 'object' && it !== null ? (item.item_id ?? null) : it, `feedback response: recommendations/${r}/items/${j}`);
      if (item?.exploration === true) (explored ??= new Set()).add(id);
      return id;
    });
    const strategy = o.strategy === 'cold_start' || o.strategy === 'personalized' ? o.strategy : strategyOf(userId);
    return { userId, strategy, items, explored };
  });
}

/**
 * Item ids named by `truth`: a table (an item_id column, or one column of ids), a tensor of ids,
 * jsonData as a list of ids, {item_id}, {item_ids: [...]}, {items: [...]} or a recommendation answer,
 * or strData as JSON or comma-separated ids.
 */
export function parseTruth(truth: SeldonMessage): string[] {
  if (truth.jsonData !== undefined) return idsFromJson(truth.jsonData, 'truth.jsonData');
  if (truth.strData !== undefined) {
    const t = truth.strData.trim();
    if (t.startsWith('[') || t.startsWith('{') || t.startsWith('"')) return idsFromJson(parseText(t, 'truth.strData'), 'truth.strData');
    return t.length === 0 ? [] : t.split(',').map((s, j) => idOf(s.trim(), `truth.strData/${j}`));
  }
  if (truth.binData !== undefined) return parseTruth({ strData: Buffer.from(truth.binData, 'base64').toString('utf8') });
  if (truth.data !== undefined) {
    const rows = tableRows(truth.data, 'truth');
    const names = (truth.data.names ?? []).map((n) => n.toLowerCase());
    let col = names.findIndex((n) => ITEM_COLUMNS.includes(n));
    if (col < 0) {
      if (rows.some((r) => r.length !== 1)) throw badData('truth: a table with several columns needs an item_id column name');
      col = 0;
    }
    return rows.map((row, r) => idOf(row[col], `truth row ${r}`));
  }
  throw badData('truth carries no payload; name the chosen items in data, jsonData or strData');
}

function idsFromJson(v: JsonValue, where: string): string[] {
  if (Array.isArray(v)) return v.map((x, j) => (typeof x === 'object' && x !== null && !Array.isArray(x) ? idOf((x as { item_id?: JsonValue }).item_id ?? null, `${where}/${j}/item_id`) : idOf(x, `${where}/${j}`)));
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, JsonValue>;
    if (o.item_id !== undefined) return [idOf(o.item_id, `${where}/item_id`)];
    if (o.item_ids !== undefined) return idsFromJson(o.item_ids, `${where}/item_ids`);
    if (o.items !== undefined) return idsFromJson(o.items, `${where}/items`);
    if (Array.isArray(o.recommendations)) return o.recommendations.flatMap((r, j) => idsFromJson((r as { items?: JsonValue })?.items ?? [], `${where}/recommendations/${j}/items`));
    throw badData(`${where}: name the chosen items as a list, {item_id}, {item_ids: [...]} or {items: [...]}`);
  }
  return [idOf(v, where)];
}

function tableRows(data: NonNullable<SeldonMessage['data']>, where: string): JsonValue[][] {
  if (data.tensor) {
    const { shape, values } = data.tensor;
    const cols = shape.length === 2 ? shape[1] : 1;
    if (values.length !== shape.reduce((a, b) => a * b, 1)) throw badData(`${where}: tensor holds ${values.length} values but shape ${JSON.stringify(shape)}`);
    return Array.from({ length: values.length / Math.max(1, cols) }, (_, r) => values.slice(r * cols, (r + 1) * cols));
  }
  if (data.ndarray) return data.ndarray.map((row) => (Array.isArray(row) ? row : [row]));
  throw badData(`${where}: data needs ndarray or tensor`);
}

function parseText(text: string, where: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (e) {
    throw badData(`${where} is not valid JSON: ${(e as Error).message}`);
  }
}

function idOf(v: JsonValue, at: string): string {
  if (typeof v === 'string' && v.length > 0 && v.length <= 256) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  throw badData(`${at}: an id must be a non-empty string (at most 256 characters) or a whole number, got ${JSON.stringify(v)}`);
}

/**
 * Interaction rows of one feedback. Without truth, the reward belongs to every shown item (`list`).
 * With truth, the named items get the reward (`chosen`) and the other shown items 0 (`skipped`); a
 * chosen item that was not shown is kept (`not_shown`) when the prediction had one user, and refused
 * when it had several (whose choice was it?).
 */
export function buildRows(lists: ShownList[], truth: string[] | null, reward: number): NewInteraction[] {
  const rows: NewInteraction[] = [];
  const servedBy = (l: ShownList, item: string): ServedBy =>
    l.explored?.has(item) ? 'exploration' : l.strategy === 'cold_start' ? 'cold_start' : l.strategy === 'pairs' ? 'pairs' : 'personalized';
  if (truth === null) {
    for (const l of lists) for (const item of new Set(l.items)) rows.push({ userId: l.userId, itemId: item, reward, kind: 'list', servedBy: servedBy(l, item) });
    if (rows.length === 0) throw badData('feedback names no items: the prediction showed none; name the chosen items in truth');
    return rows;
  }
  const chosen = new Set(truth);
  const placed = new Set<string>();
  for (const l of lists) {
    for (const item of new Set(l.items)) {
      const hit = chosen.has(item);
      if (hit) placed.add(item);
      rows.push({ userId: l.userId, itemId: item, reward: hit ? reward : 0, kind: hit ? 'chosen' : 'skipped', servedBy: servedBy(l, item) });
    }
  }
  const unplaced = [...chosen].filter((i) => !placed.has(i));
  if (unplaced.length > 0) {
    if (lists.length !== 1) {
      throw badData(`truth names ${unplaced.map((i) => `"${i}"`).join(', ')}, not shown to any of the ${lists.length} users of that prediction; send feedback per user`);
    }
    for (const item of unplaced) rows.push({ userId: lists[0].userId, itemId: item, reward, kind: 'chosen', servedBy: 'not_shown' });
  }
  if (rows.length === 0) throw badData('feedback names no items: the prediction showed none and truth is empty');
  return rows;
}
