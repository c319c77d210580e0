// What both interaction-store backends share: the row and entry types, the InteractionStore interface,
// the checks every write passes, the store's errors, and how a store URL is shown in a log. The backends
// (sqlite.ts, postgres.ts) and migrations import it; index.ts opens one of them.
import { STORE_DEFAULTS } from '../../config/store.js';
import { DomainError } from '../../errors.js';

/**
 * How an interaction row relates to what was shown:
 * - `list`: the reward applies to the whole shown list (feedback without truth): every shown item gets it;
 * - `chosen`: the item was named in `truth` (the reward is this item's);
 * - `skipped`: shown, but `truth` named other items: reward 0.
 */
export type InteractionKind = 'list' | 'chosen' | 'skipped';

/** What put the item in front of the user. Only bandit-served rows update the bandit. */
/**
 * `claimed`: the feedback's own payloads say the bandit showed the item, but this server has no record
 * of that prediction (unknown or expired puid). Stored for retraining, never counted by the bandit: a
 * client could otherwise invent impressions and push any item up the cold-start ranking.
 */
export type ServedBy = 'cold_start' | 'exploration' | 'personalized' | 'pairs' | 'not_shown' | 'claimed';

export const INTERACTION_KINDS: readonly InteractionKind[] = ['list', 'chosen', 'skipped'];
export const SERVED_BY: readonly ServedBy[] = ['cold_start', 'exploration', 'personalized', 'pairs', 'not_shown', 'claimed'];

export interface NewInteraction {
  userId: string;
  itemId: string;
  /** In [0, 1]. */
  reward: number;
  kind: InteractionKind;
  servedBy: ServedBy;
}

export interface FeedbackEntry {
  /** The puid of the prediction the feedback is about (null when the payloads carried it all). */
  puid: string | null;
  /** The model version that answered that prediction. */
  modelVersion: string | null;
  /** The reward as sent. */
  reward: number;
  transport: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

export interface Interaction extends NewInteraction {
  id: number;
  feedbackId: number;
  /** Milliseconds since the epoch (the feedback's time). */
  ts: number;
  puid: string | null;
  modelVersion: string | null;
}

/** A bandit update: α_i += successes, β_i += failures. */
export interface ArmDelta {
  itemId: string;
  successes: number;
  failures: number;
}

export interface ArmState extends ArmDelta {
  /** Rows that updated this arm. */
  trials: number;
}

/** One remembered prediction as the shared memory stores it (the packed lists of predictions.ts). */
export interface SharedPredictionRow {
  puid: string;
  modelVersion: string;
  packed: string;
  /** Estimated size of the row, counted against the table's byte cap. */
  bytes: number;
  /** When the prediction was answered (ms since the epoch). */
  createdAt: number;
}

export interface StoreStats {
  feedback: number;
  interactions: number;
  users: number;
  /** Largest interaction id (0 when empty): a watermark for "trained through". */
  maxInteractionId: number;
}

export interface InteractionStore {
  readonly backend: 'sqlite' | 'postgres';
  /** File path or URL (password redacted), for logs. */
  readonly location: string;
  /** Atomically stores one feedback, its interactions and its bandit updates; resolves after commit. */
  record(entry: FeedbackEntry, rows: NewInteraction[], arms: ArmDelta[]): Promise<number>;
  /** A user's interactions, oldest first (the newest `limit` of them). */
  userInteractions(userId: string, limit?: number): Promise<Interaction[]>;
  /** Distinct users with an interaction whose id is > afterId, most recently active first. */
  usersSince(afterId: number, limit: number): Promise<string[]>;
  /** Interactions with id > afterId in id order, at most `limit` (paging for export and retraining). */
  scan(afterId: number, limit: number): Promise<Interaction[]>;
  /** Every bandit arm with its accumulated successes and failures. */
  arms(): Promise<ArmState[]>;
  stats(): Promise<StoreStats>;
  /** The schema version the database is at. */
  schemaVersion(): Promise<number>;
  /**
   * The shared prediction memory (PostgreSQL only; see shared-predictions.ts). Absent on SQLite,
   * whose single replica keeps its predictions in process.
   */
  putPredictions?(rows: SharedPredictionRow[]): Promise<void>;
  /** The row for `puid` written at or after `notBefore` (ms since the epoch), if any. */
  getPrediction?(puid: string, notBefore: number): Promise<SharedPredictionRow | null>;
  /** Deletes rows older than `before`, then the oldest beyond `maxBytes` in total; one replica at a time. */
  expirePredictions?(before: number, maxBytes: number): Promise<{ expired: number; evicted: number; swept: boolean }>;
  close(): Promise<void>;
}

/** The client-facing text of every store failure: no URL, host, user, path or driver message. */
export const STORE_UNAVAILABLE = 'interaction store unavailable';

/**
 * The store could not take the write (disk full, read-only, unreachable, timed out): feedback answers
 * 503. `message` is for operators (logs, CLI) with credentials redacted; what a client may see is
 * made by StoreHolder (STORE_UNAVAILABLE plus a request id that finds this message in the log).
 */
export class StoreUnavailableError extends DomainError {
  constructor(message: string, cause?: unknown) {
    super('unavailable', message, { cause, publicMessage: STORE_UNAVAILABLE });
  }
}

/** The database holds a schema newer than this build, or the migrations failed. */
export class StoreSchemaError extends DomainError {
  constructor(message: string) {
    super('unavailable', message, { publicMessage: STORE_UNAVAILABLE });
  }
}

/** Every row written by `record` is checked here, so both backends refuse the same things. */
export function checkRows(entry: FeedbackEntry, rows: NewInteraction[], arms: ArmDelta[]): void {
  if (!(entry.reward >= 0 && entry.reward <= 1)) throw new RangeError(`feedback reward ${entry.reward} is outside [0, 1]`);
  for (const r of rows) {
    if (!r.userId || !r.itemId) throw new RangeError('an interaction needs a user id and an item id');
    if (!(r.reward >= 0 && r.reward <= 1)) throw new RangeError(`interaction reward ${r.reward} is outside [0, 1]`);
    if (!INTERACTION_KINDS.includes(r.kind)) throw new RangeError(`unknown interaction kind ${r.kind}`);
    if (!SERVED_BY.includes(r.servedBy)) throw new RangeError(`unknown served_by ${r.servedBy}`);
  }
  for (const a of arms) {
    if (!(a.successes >= 0 && a.failures >= 0 && Number.isFinite(a.successes + a.failures))) throw new RangeError(`bad bandit update for ${a.itemId}`);
  }
}

/** Merges the bandit updates of one feedback by item, so each arm is written once per transaction. */
export function mergeArms(arms: ArmDelta[]): { itemId: string; successes: number; failures: number; trials: number }[] {
  const by = new Map<string, { itemId: string; successes: number; failures: number; trials: number }>();
  for (const a of arms) {
    const m = by.get(a.itemId) ?? { itemId: a.itemId, successes: 0, failures: 0, trials: 0 };
    m.successes += a.successes;
    m.failures += a.failures;
    m.trials += 1;
    by.set(a.itemId, m);
  }
  return [...by.values()].sort((x, y) => (x.itemId < y.itemId ? -1 : x.itemId > y.itemId ? 1 : 0));
}

/** Bounds that keep a slow or frozen store from holding requests (and their memory) without limit. */
export interface StoreSafetySettings {
  /** Longest a request waits on one store operation, connection wait included (ms): RECSERVE_STORE_TIMEOUT_MS. */
  timeoutMs: number;
  /** Most operations waiting for a store connection; beyond that feedback answers 503 at once: RECSERVE_STORE_MAX_WAITING. */
  maxWaiting: number;
  /** PostgreSQL connections per replica: RECSERVE_STORE_POOL_SIZE (unused by SQLite). */
  poolSize?: number;
}

export const STORE_SAFETY_DEFAULTS: StoreSafetySettings = {
  timeoutMs: STORE_DEFAULTS.storeTimeoutMs,
  maxWaiting: STORE_DEFAULTS.storeMaxWaiting,
  poolSize: STORE_DEFAULTS.storePoolSize,
};

/** Query parameters whose values are never secret; every other value (password, sslpassword, PGPASSWORD, …) is masked. */
const PLAIN_PARAMS = new Set(['schema', 'sslmode', 'application_name', 'connect_timeout', 'target_session_attrs', 'host', 'port', 'dbname']);

/**
 * A store URL fit for a log: the password and every query value that is not known to be plain
 * replaced by ***. Parsed as a URL, so '@' inside a password, an empty user and ?password= are all
 * caught; text that does not parse (or parses with its '@' outside the user part) keeps only its scheme.
 */
export function redact(url: string): string {
  const text = url.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1];
  const opaque = scheme ? `${scheme}://***` : '***';
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return opaque;
  }
  // An '@' that did not end up in the user part means a password the parser split elsewhere (e.g. at '#' or '?').
  if (text.includes('@') && !u.username && !u.password) return opaque;
  if (u.password) u.password = '***';
  u.hash = '';
  for (const key of [...new Set(u.searchParams.keys())]) if (!PLAIN_PARAMS.has(key.toLowerCase())) u.searchParams.set(key, '***');
  // URLSearchParams writes '*' as %2A; keep the marker readable.
  return u.toString().replace(/%2A%2A%2A/g, '***');
}

/** A stored interaction as both backends' SQL rows read it. */
export interface InteractionRow {
  id: number;
  feedback_id: number;
  user_id: string;
  item_id: string;
  reward: number;
  kind: Interaction['kind'];
  served_by: Interaction['servedBy'];
  ts: number;
  puid: string | null;
  model_version: string | null;
}

export function toInteraction(r: InteractionRow): Interaction {
  return {
    id: Number(r.id),
    feedbackId: Number(r.feedback_id),
    userId: r.user_id,
    itemId: r.item_id,
    reward: Number(r.reward),
    kind: r.kind,
    servedBy: r.served_by,
    ts: Number(r.ts),
    puid: r.puid,
    modelVersion: r.model_version,
  };
}
