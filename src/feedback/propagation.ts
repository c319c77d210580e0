// Live propagation between replicas that share one PostgreSQL store, with no extra server: a feedback
// committed through any replica reaches every other replica's bandit posterior and fold-in state.
//
// How a replica hears about a commit: a statement-level trigger on the schema's `feedback` table runs
// pg_notify(channel, '') in the writing transaction, so PostgreSQL delivers it only at commit, and for
// every writer (any replica, the CLI, an import), collapsed to one notification per transaction. The
// trigger is created here, idempotently, under the advisory lock the migrations take, by the first
// replica whose listener connects (the migrations file belongs to the store; this keeps the wake-up
// mechanism next to the only code that relies on it).
//
// What a replica does when it hears: nothing from the notification itself (it carries no data). It
// reads everything past its watermark (the largest feedback id it has applied), reloads the bandit arms
// those feedbacks touched from bandit_arms (written in the same transaction; applied as absolute
// states, so a repeat or an out-of-order read converges) and re-solves the fold-in of the users they
// name from their stored interactions. Its own feedbacks are applied again too: both steps are
// idempotent, and it heals a local fold-in that raced a read. A burst of notifications is coalesced
// into one read per debounce tick.
//
// Missed notifications never matter: the listener is a dedicated connection that reconnects with
// backoff and, on every (re)connect, runs the same catch-up read before anything else; a slow poll
// (also the frozen-server health check of the listener) runs the read as well. Feedback ids are
// assigned at insert, not at commit, so a transaction can commit an id below the watermark: ids
// missing below the largest one read are kept as gaps and re-read until they appear or a grace period
// (longer than any store transaction may stay open) has passed.
//
// PostgreSQL down: the listener backs off and retries, logging once per outage; predictions keep
// answering from the last posterior; nothing on the request path waits on any of this.
import { createHash } from 'node:crypto';
import pg from 'pg';
import client from 'prom-client';
import type { Recommender } from '../model/recommender.js';
import type { Logger } from '../telemetry/logger.js';
import type { ThompsonBandit } from './bandit.js';
import type { FoldInModel } from './fold-in.js';
import { splitSchema, type PostgresStore } from './store/postgres.js';
import { toInteraction } from './store/contract.js';
import type { ArmState, Interaction, InteractionStore } from './store/index.js';

export interface PropagationSettings {
  /** Notifications within this many ms are served by one read. */
  debounceMs: number;
  /** A catch-up read runs at least this often even without notifications (and checks the listener). */
  pollMs: number;
  /** First reconnect delay; doubles per failed attempt up to maxReconnectMs. */
  reconnectMs: number;
  maxReconnectMs: number;
  /** Client-side bound on each listener query (a frozen server makes the listener reconnect). */
  queryTimeoutMs: number;
  /** Feedback rows read per batch of a catch-up. */
  batch: number;
  /** How long an id missing below the watermark is re-read (a transaction that committed late). */
  gapGraceMs: number;
  /** Most gap ids tracked (the oldest are dropped first). */
  maxGaps: number;
}

export const PROPAGATION_DEFAULTS: PropagationSettings = {
  debounceMs: 25,
  pollMs: 5000,
  reconnectMs: 250,
  maxReconnectMs: 10_000,
  queryTimeoutMs: 10_000,
  batch: 2000,
  gapGraceMs: 120_000,
  maxGaps: 10_000,
};

/** Users re-solved between two turns of the event loop. */
const FOLD_CHUNK = 200;
const TRIGGER = 'recserve_feedback_notify';
const FUNCTION = 'recserve_notify_feedback';

/** The NOTIFY channel of one schema (schemas share a database's channels; names are ≤ 63 bytes). */
export function channelOf(schema: string): string {
  return `recserve_feedback_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
}

/** The largest feedback id of a PostgreSQL store (read before the bandit loads its arms); null for SQLite. */
export async function feedbackWatermark(store: InteractionStore): Promise<number | null> {
  if (store.backend !== 'postgres') return null;
  const s = store as PostgresStore;
  const r = await s.pool.query(`SELECT COALESCE(MAX(id), 0) AS m FROM ${quoteIdent(s.schema)}.feedback`);
  return Number(r.rows[0].m);
}

export interface PropagationDeps {
  /** RECSERVE_STORE_URL (postgres://…, with ?schema= when set). */
  url: string;
  bandit: ThompsonBandit;
  /** Opens the store (its open hook loads the bandit and calls `loaded`). */
  openStore: () => Promise<unknown>;
  /** Models whose fold-in follows feedback, and their fold-in state. */
  liveModels: () => Recommender[];
  foldInOf: (model: Recommender) => FoldInModel | null;
  log: Logger;
  registry: client.Registry;
  settings?: Partial<PropagationSettings>;
}

export interface PropagationStats {
  connected: boolean;
  watermark: number | null;
  reads: number;
  reconnects: number;
  applied: number;
  gaps: number;
}

type ReadReason = 'connect' | 'notify' | 'poll';

export class Propagation {
  readonly settings: PropagationSettings;
  readonly channel: string;
  private readonly schema: string;
  private readonly connectionString: string;
  private readonly q: { feedback: string; interactions: string; arms: string };
  /** The client of the current connection attempt (events of older ones are ignored). */
  private client: pg.Client | null = null;
  /** The client once it listens. */
  private listener: pg.Client | null = null;
  private everConnected = false;
  private watermark: number | null = null;
  /** Ids below the watermark not seen yet → when they were first missed. */
  private readonly gaps = new Map<number, number>();
  private stopped = false;
  private triggerReady = false;
  private attempt = 0;
  private outageLogged = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private debounceTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  /** The read in progress; another notification during it asks for one more. */
  private reading: Promise<void> | null = null;
  private again: ReadReason | null = null;
  private readonly counters = { reads: 0, reconnects: 0, applied: 0 };
  private readonly lag: client.Histogram;
  private readonly readsMetric: client.Counter<'reason'>;
  private readonly reconnectsMetric: client.Counter;
  private readonly appliedMetric: client.Counter;

  constructor(private readonly deps: PropagationDeps) {
    this.settings = { ...PROPAGATION_DEFAULTS, ...deps.settings };
    const { connectionString, schema } = splitSchema(deps.url);
    this.connectionString = connectionString;
    this.schema = schema;
    this.channel = channelOf(schema);
    const s = quoteIdent(schema);
    this.q = { feedback: `${s}.feedback`, interactions: `${s}.interactions`, arms: `${s}.bandit_arms` };
    const registers = [deps.registry];
    this.lag = new client.Histogram({
      name: 'recserve_propagation_lag_seconds',
      help: "Time from a feedback's creation (on the replica that wrote it) to its application on this replica",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.readsMetric = new client.Counter({ name: 'recserve_propagation_reads_total', help: 'Catch-up reads of the shared store by what caused them', labelNames: ['reason'] as const, registers });
    this.reconnectsMetric = new client.Counter({ name: 'recserve_propagation_reconnects_total', help: 'Times the propagation listener connected again after losing its connection', registers });
    this.appliedMetric = new client.Counter({ name: 'recserve_propagation_feedback_total', help: 'Feedbacks (from any replica) applied to this replica by propagation', registers });
    const self = this;
    new client.Gauge({
      name: 'recserve_propagation_connected',
      help: '1 while the propagation listener holds its LISTEN connection',
      registers,
      collect() {
        this.set(self.listener ? 1 : 0);
      },
    });
  }

  /** The store opened and the bandit loaded its arms: `mark` is the largest feedback id read before that load. */
  loaded(mark: number | null): void {
    if (mark === null) return;
    // A reopen after an outage keeps the older watermark: what came in between is read again (idempotent).
    this.watermark = this.watermark === null ? mark : Math.min(this.watermark, mark);
  }

  start(): void {
    this.stopped = false;
    this.pollTimer = setInterval(() => this.request('poll'), this.settings.pollMs);
    this.pollTimer.unref();
    void this.connect();
  }

  get stats(): PropagationStats {
    return { connected: this.listener !== null, watermark: this.watermark, ...this.counters, gaps: this.gaps.size };
  }

  /** The backend pid of the LISTEN connection (null while disconnected). */
  get listenerPid(): number | null {
    return (this.listener as unknown as { processID?: number } | null)?.processID ?? null;
  }

  /** Skips a pending reconnect delay and connects now (after an outage an operator or a test knows is over). */
  retryNow(): void {
    if (!this.reconnectTimer) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    void this.connect();
  }

  /** Resolves once a read started now has finished (tests). */
  async sync(): Promise<void> {
    this.request('poll', 0);
    while (this.reading || this.debounceTimer) await (this.reading ?? new Promise((r) => setTimeout(r, 5)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of [this.reconnectTimer, this.debounceTimer]) if (t) clearTimeout(t);
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.reconnectTimer = this.debounceTimer = this.pollTimer = null;
    await this.reading?.catch(() => undefined);
    const c = this.client;
    this.client = this.listener = null;
    await c?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const c = new pg.Client({
      connectionString: this.connectionString,
      application_name: 'recserve-propagation',
      keepAlive: true,
      connectionTimeoutMillis: this.settings.queryTimeoutMs,
      query_timeout: this.settings.queryTimeoutMs,
      statement_timeout: this.settings.queryTimeoutMs,
    });
    this.client = c;
    // Never an uncaught 'error': a lost connection is handled as an outage.
    c.on('error', (e) => this.lost(c, e));
    c.on('end', () => this.lost(c, new Error('connection ended')));
    try {
      await c.connect();
      // The bandit's arms and the watermark come from the store's open hook.
      if (this.watermark === null) await this.deps.openStore();
      if (this.watermark === null) throw new Error('the interaction store did not report a watermark');
      if (!this.triggerReady) await this.installTrigger(c);
      c.on('notification', (n) => {
        if (n.channel === this.channel) this.request('notify');
      });
      await c.query(`LISTEN ${quoteIdent(this.channel)}`);
      if (this.stopped || this.client !== c) {
        await c.end().catch(() => undefined);
        return;
      }
      this.listener = c;
      this.attempt = 0;
      const wasConnected = this.everConnected;
      this.everConnected = true;
      if (wasConnected) {
        this.counters.reconnects++;
        this.reconnectsMetric.inc();
      }
      // Listening first, then reading: a commit after LISTEN is notified, one before it is read now.
      this.request('connect', 0);
      if (this.outageLogged) {
        this.outageLogged = false;
        this.deps.log.info({ channel: this.channel }, 'propagation listener connected again; catching up from the store');
      }
    } catch (e) {
      this.lost(c, e as Error);
    }
  }

  /** One outage: close the client, log once, reconnect with backoff. */
  private lost(c: pg.Client, e: Error): void {
    c.removeAllListeners('notification');
    if (this.client !== c) return; // a late event of a client already given up
    this.client = null;
    this.listener = null;
    void c.end().catch(() => undefined);
    if (this.stopped || this.reconnectTimer) return;
    if (!this.outageLogged) {
      this.outageLogged = true;
      this.deps.log.warn({ err: e.message, channel: this.channel }, 'propagation listener lost the store; predictions answer from the last posterior while it reconnects');
    }
    const delay = Math.min(this.settings.maxReconnectMs, this.settings.reconnectMs * 2 ** Math.min(this.attempt, 16));
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  /** The NOTIFY trigger on the feedback table, created once per schema under the migrations' lock. */
  private async installTrigger(c: pg.Client): Promise<void> {
    const exists = async () =>
      (
        await c.query(
          `SELECT 1 FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid JOIN pg_namespace n ON n.oid = r.relnamespace
           WHERE n.nspname = $1 AND r.relname = 'feedback' AND t.tgname = $2`,
          [this.schema, TRIGGER],
        )
      ).rowCount! > 0;
    try {
      if (!(await exists())) await this.createTrigger(c, exists);
    } catch (e) {
      // A role that may not create triggers: the poll still propagates, only slower.
      if ((e as { code?: string }).code !== '42501') throw e;
      this.deps.log.error(
        { err: (e as Error).message, schema: this.schema, every_ms: this.settings.pollMs },
        'propagation: cannot create the feedback NOTIFY trigger (permission denied); other replicas are read by polling only',
      );
    }
    this.triggerReady = true;
  }

  private async createTrigger(c: pg.Client, exists: () => Promise<boolean>): Promise<void> {
    const lockKey = `recserve-migrations:${this.schema}`;
    await c.query('SELECT pg_advisory_lock(hashtext($1))', [lockKey]);
    try {
      if (!(await exists())) {
        const fn = `${quoteIdent(this.schema)}.${FUNCTION}`;
        await c.query('BEGIN');
        try {
          await c.query(
            `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify(${quoteLiteral(this.channel)}, ''); RETURN NULL; END $$`,
          );
          await c.query(`CREATE TRIGGER ${TRIGGER} AFTER INSERT ON ${this.q.feedback} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`);
          await c.query('COMMIT');
        } catch (e) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
        this.deps.log.info({ schema: this.schema, channel: this.channel }, 'propagation: created the feedback NOTIFY trigger');
      }
    } finally {
      await c.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => undefined);
    }
  }

  /** Asks for a catch-up read: after the debounce, one at a time, another one after if asked meanwhile. */
  private request(reason: ReadReason, delay = this.settings.debounceMs): void {
    if (this.stopped) return;
    if (this.reading) {
      this.again ??= reason;
      return;
    }
    if (this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      this.reading = this.read(reason).finally(() => {
        this.reading = null;
        const next = this.again;
        this.again = null;
        if (next) this.request(next);
      });
    }, delay);
  }

  private async read(reason: ReadReason): Promise<void> {
    const c = this.listener;
    if (!c || this.watermark === null) return;
    try {
      this.counters.reads++;
      this.readsMetric.inc({ reason });
      for (;;) {
        const more = await this.readBatch(c);
        if (!more) break;
      }
    } catch (e) {
      // A listener query that fails (or hangs past the timeout) means the connection is not to be trusted.
      this.lost(c, e as Error);
    }
  }

  /** Reads and applies one batch past the watermark (plus gap ids); true when more may follow. */
  private async readBatch(c: pg.Client): Promise<boolean> {
    const now = Date.now();
    for (const [id, since] of this.gaps) if (now - since > this.settings.gapGraceMs) this.gaps.delete(id);
    const from = this.watermark!;
    const gapIds = [...this.gaps.keys()];
    const fb = await c.query(`SELECT id, created_at FROM ${this.q.feedback} WHERE id > $1 OR id = ANY($2::bigint[]) ORDER BY id LIMIT $3`, [
      from,
      gapIds,
      this.settings.batch,
    ]);
    if (fb.rows.length === 0) return false;
    const ids = fb.rows.map((r) => Number(r.id));
    const created = fb.rows.map((r) => Number(r.created_at));
    const touched = await c.query(
      `SELECT 'user' AS kind, user_id AS id FROM ${this.q.interactions} WHERE feedback_id = ANY($1::bigint[]) GROUP BY user_id
       UNION ALL
       SELECT 'item', item_id FROM ${this.q.interactions} WHERE feedback_id = ANY($1::bigint[]) AND served_by IN ('cold_start', 'exploration') GROUP BY item_id`,
      [ids],
    );
    const users = touched.rows.filter((r) => r.kind === 'user').map((r) => r.id as string);
    const items = touched.rows.filter((r) => r.kind === 'item').map((r) => r.id as string);
    if (items.length > 0) {
      const arms = await c.query(`SELECT item_id, successes, failures, trials FROM ${this.q.arms} WHERE item_id = ANY($1::text[])`, [items]);
      const states: ArmState[] = arms.rows.map((x) => ({ itemId: x.item_id, successes: Number(x.successes), failures: Number(x.failures), trials: Number(x.trials) }));
      this.deps.bandit.applyStates(states);
    }
    if (users.length > 0) await this.refold(c, users);

    // Bookkeeping after the batch applied: the watermark moves, ids skipped below it become gaps.
    const applied = Date.now();
    let top = from;
    for (let j = 0; j < ids.length; j++) {
      const id = ids[j];
      if (id <= from && !this.gaps.delete(id)) continue; // a gap seen before, already applied
      this.lag.observe(Math.max(0, applied - created[j]) / 1000);
      this.counters.applied++;
      this.appliedMetric.inc();
      top = Math.max(top, id);
    }
    const seen = new Set(ids);
    for (let id = Math.max(from + 1, top - this.settings.maxGaps); id < top; id++) if (!seen.has(id)) this.gaps.set(id, applied);
    while (this.gaps.size > this.settings.maxGaps) this.gaps.delete(this.gaps.keys().next().value!);
    this.watermark = top;
    return ids.length === this.settings.batch && top > from;
  }

  /** Re-solves the fold-in of these users on every live model from their stored interactions. */
  private async refold(c: pg.Client, users: string[]): Promise<void> {
    const fits = this.deps
      .liveModels()
      .map((m) => this.deps.foldInOf(m))
      .filter((f): f is FoldInModel => f !== null);
    if (fits.length === 0) return;
    const maxRows = Math.max(...fits.map((f) => f.settings.maxRows));
    for (let s = 0; s < users.length; s += FOLD_CHUNK) {
      const part = users.slice(s, s + FOLD_CHUNK);
      const r = await c.query(
        `SELECT * FROM (SELECT i.*, row_number() OVER (PARTITION BY user_id ORDER BY id DESC) AS rn FROM ${this.q.interactions} i WHERE user_id = ANY($1::text[])) t
         WHERE rn <= $2 ORDER BY user_id, id`,
        [part, maxRows],
      );
      const byUser = new Map<string, Interaction[]>();
      for (const row of r.rows) {
        const x = toInteraction(row);
        let list = byUser.get(x.userId);
        if (!list) byUser.set(x.userId, (list = []));
        list.push(x);
      }
      for (const [user, rows] of byUser) {
        for (const f of fits) {
          try {
            f.update(user, rows);
          } catch (e) {
            this.deps.log.warn({ err: (e as Error).message, user }, 'propagation: fold-in of a user failed; the next feedback retries');
          }
        }
      }
      // Let requests run between chunks of a large catch-up.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
