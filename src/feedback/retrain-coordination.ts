// Retraining and the serving version across replicas that share one PostgreSQL store.
//
// One retrain at a time: a retrain first takes pg_try_advisory_lock(hashtext('recserve-retrain:<schema>'))
// on a dedicated connection held until it ends. A replica that cannot take it does not train (the admin
// call answers busy, the schedule skips). PostgreSQL releases the lock when that connection goes, so a
// replica killed mid-retrain never blocks the next one. Each retrain is a row of `retrain_runs` (replica,
// trigger, start, end, outcome, published version, the outcome as JSON, and the backend pid holding the
// lock, so "running" means a row whose lock is really held — a killed replica's row is not running, and
// the next retrain marks it abandoned).
//
// The serving version: one row of `serving_version` (version, whether it is the base model, replica,
// why, when). Whatever swaps the model on one replica through the admin API or a retrain (publish,
// reload, rollback) first loads it there — a version that does not load is never recorded — then writes
// the row and pg_notify()s a channel of the schema in the same statement. Every replica listens on a
// dedicated connection (reconnecting with backoff) and, on a notification, every `pollMs` and on each
// (re)connect, reads the row and swaps to it (a rollback target already loaded is swapped back in one
// reference, anything else is loaded and warmed beside the serving version: no request fails). Swaps and
// row writes of one replica are serialised, and the row is re-read inside that section, so the last
// write wins everywhere. A replica starting reads the row first and starts from that version.
//
// The published versions themselves live on the versions root (<data dir>/models), which replicas must
// share (a ReadWriteMany volume mounted there; docs/feedback.md). The tables are created here,
// idempotently, under the migrations' advisory lock (as propagation.ts creates its trigger).
import { DomainError } from '../errors.js';
import { createHash, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ModelNotFoundError, ModelRefusedError, type ModelRegistry } from '../model/registry.js';
import type { Recommender } from '../model/recommender.js';
import type { Logger } from '../telemetry/logger.js';
import { splitSchema } from './store/postgres.js';

export interface CoordinationSettings {
  /** The serving row is read at least this often (a missed notification costs at most this). */
  pollMs: number;
  reconnectMs: number;
  maxReconnectMs: number;
  /** Bound on each query of ours (a frozen server answers an error, not a hang). */
  queryTimeoutMs: number;
}

export const COORDINATION_DEFAULTS: CoordinationSettings = { pollMs: 2000, reconnectMs: 250, maxReconnectMs: 10_000, queryTimeoutMs: 5000 };

export interface ServingRecord {
  version: string;
  /** The base model (its version name may not be a directory under the versions root). */
  isBase: boolean;
  replica: string;
  reason: string;
  updatedAt: string;
}

export interface RetrainRun {
  id: number;
  replica: string;
  trigger: string;
  startedAt: string;
  finishedAt: string | null;
  outcome: string | null;
  version: string | null;
  /** The retrain's outcome as the replica that ran it reported it. */
  detail: Record<string, unknown> | null;
}

/** A held retrain lock; `finish` records the outcome and releases it. */
export interface RetrainLease {
  runId: number;
  finish(outcome: string, version: string | null, detail: object): Promise<void>;
}

/** A stable, readable id of this replica: the pod's host name plus a suffix (in-process replicas share a host). */
export function replicaId(): string {
  return `${os.hostname()}-${process.pid}-${randomUUID().slice(0, 6)}`;
}

export function servingChannelOf(schema: string): string {
  return `recserve_serving_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
}

export class RetrainCoordination {
  readonly replica: string;
  readonly settings: CoordinationSettings;
  readonly channel: string;
  private readonly schema: string;
  private readonly connectionString: string;
  private readonly t: { runs: string; serving: string };
  private readonly pool: pg.Pool;
  private tables: Promise<void> | null = null;
  /** Swaps and row writes of this replica, one at a time. */
  private lock: Promise<unknown> = Promise.resolve();
  /** A swap made here whose row could not be written yet: written before the row is read again. */
  private unrecorded: Omit<ServingRecord, 'updatedAt'> | null = null;
  /** The row a swap failed for (not retried until the row changes). */
  private failed: string | null = null;
  private listener: pg.Client | null = null;
  private stopped = true;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;
  private checkAgain = false;
  private outageLogged = false;
  /** Swaps this replica made because the row named another version. */
  followed = 0;

  constructor(
    private readonly deps: { url: string; registry: ModelRegistry; log: Logger; replica?: string; settings?: Partial<CoordinationSettings> },
  ) {
    this.settings = { ...COORDINATION_DEFAULTS, ...deps.settings };
    const { connectionString, schema } = splitSchema(deps.url);
    this.connectionString = connectionString;
    this.schema = schema;
    this.channel = servingChannelOf(schema);
    this.replica = deps.replica ?? replicaId();
    const s = quoteIdent(schema);
    this.t = { runs: `${s}.retrain_runs`, serving: `${s}.serving_version` };
    this.pool = new pg.Pool({
      connectionString,
      max: 2,
      connectionTimeoutMillis: this.settings.queryTimeoutMs,
      idleTimeoutMillis: 30_000,
      query_timeout: this.settings.queryTimeoutMs,
      statement_timeout: this.settings.queryTimeoutMs,
      application_name: 'recserve-coordination',
    });
    this.pool.on('error', () => undefined);
  }

  private get lockKey(): string {
    return `recserve-retrain:${this.schema}`;
  }

  /** Creates the two tables once per schema, under the migrations' lock. */
  private ensureTables(): Promise<void> {
    this.tables ??= (async () => {
      const c = await this.pool.connect();
      try {
        const present = async () =>
          (await c.query('SELECT to_regclass($1) AS a, to_regclass($2) AS b', [this.t.runs, this.t.serving])).rows[0];
        const p = await present();
        if (p.a && p.b) return;
        const migrationsLock = `recserve-migrations:${this.schema}`;
        await c.query('SET statement_timeout = 0'); // another replica's migration may hold the lock a while
        await c.query('SELECT pg_advisory_lock(hashtext($1))', [migrationsLock]);
        try {
          await c.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`);
          await c.query(`CREATE TABLE IF NOT EXISTS ${this.t.runs} (
            id bigserial PRIMARY KEY,
            replica text NOT NULL,
            trigger text NOT NULL,
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            outcome text,
            version text,
            lock_pid integer,
            detail jsonb)`);
          await c.query(`CREATE TABLE IF NOT EXISTS ${this.t.serving} (
            id smallint PRIMARY KEY CHECK (id = 1),
            version text NOT NULL,
            is_base boolean NOT NULL,
            replica text NOT NULL,
            reason text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now())`);
        } finally {
          await c.query('SELECT pg_advisory_unlock(hashtext($1))', [migrationsLock]).catch(() => undefined);
          await c.query('RESET statement_timeout').catch(() => undefined);
        }
      } finally {
        c.release();
      }
    })().catch((e) => {
      this.tables = null; // tried again next time
      throw e;
    });
    return this.tables;
  }

  /** Takes the retrain lock and records the run; null when another replica holds it. */
  async tryLock(trigger: string): Promise<RetrainLease | null> {
    await this.ensureTables();
    const c = new pg.Client({ connectionString: this.connectionString, application_name: 'recserve-retrain-lock', keepAlive: true, connectionTimeoutMillis: this.settings.queryTimeoutMs });
    let lost: Error | null = null;
    c.on('error', (e) => {
      lost = e;
      this.deps.log.warn({ err: e.message }, 'retrain: the connection holding the retrain lock was lost; another replica may start a retrain');
    });
    await c.connect();
    try {
      const got = (await c.query('SELECT pg_try_advisory_lock(hashtext($1)) AS ok, pg_backend_pid() AS pid', [this.lockKey])).rows[0];
      if (!got.ok) {
        await c.end().catch(() => undefined);
        return null;
      }
      // Holding the lock: no other retrain runs, so an unfinished row is one whose replica died.
      await this.pool.query(`UPDATE ${this.t.runs} SET finished_at = now(), outcome = 'abandoned' WHERE finished_at IS NULL`);
      const row = (await this.pool.query(`INSERT INTO ${this.t.runs} (replica, trigger, lock_pid) VALUES ($1, $2, $3) RETURNING id`, [this.replica, trigger, got.pid])).rows[0];
      const runId = Number(row.id);
      return {
        runId,
        finish: async (outcome, version, detail) => {
          try {
            await this.pool.query(`UPDATE ${this.t.runs} SET finished_at = now(), outcome = $2, version = $3, detail = $4 WHERE id = $1`, [runId, outcome, version, JSON.stringify(detail)]);
          } finally {
            if (!lost) await c.query('SELECT pg_advisory_unlock(hashtext($1))', [this.lockKey]).catch(() => undefined);
            await c.end().catch(() => undefined);
          }
        },
      };
    } catch (e) {
      await c.end().catch(() => undefined);
      throw e;
    }
  }

  /** The retrain running on some replica (its lock really held), and the newest finished one. */
  async runs(): Promise<{ running: RetrainRun | null; last: RetrainRun | null }> {
    await this.ensureTables();
    const running = await this.pool.query(
      `SELECT * FROM ${this.t.runs} r WHERE finished_at IS NULL
         AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.pid = r.lock_pid)
       ORDER BY id DESC LIMIT 1`,
    );
    const last = await this.pool.query(`SELECT * FROM ${this.t.runs} WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1`);
    return { running: running.rows[0] ? toRun(running.rows[0]) : null, last: last.rows[0] ? toRun(last.rows[0]) : null };
  }

  /** Every recorded retrain, newest first (tests and operators). */
  async history(limit = 20): Promise<RetrainRun[]> {
    await this.ensureTables();
    return (await this.pool.query(`SELECT * FROM ${this.t.runs} ORDER BY id DESC LIMIT $1`, [limit])).rows.map(toRun);
  }

  async serving(): Promise<ServingRecord | null> {
    await this.ensureTables();
    const r = (await this.pool.query(`SELECT * FROM ${this.t.serving} WHERE id = 1`)).rows[0];
    return r ? { version: r.version, isBase: r.is_base, replica: r.replica, reason: r.reason, updatedAt: new Date(r.updated_at).toISOString() } : null;
  }

  /**
   * Runs a swap of this replica (`swap` returns the model now serving) and records it for every replica.
   * Throws what the swap throws; when only the record fails, the swap stands, the write is retried by the
   * watcher, and a RecordError says so.
   */
  swapAndRecord(reason: string, swap: () => Promise<Recommender>): Promise<Recommender> {
    return this.exclusive(async () => {
      const rec = await swap();
      const record = { version: rec.version, isBase: this.deps.registry.activeDir === this.deps.registry.baseModelDir, replica: this.replica, reason };
      this.unrecorded = record;
      try {
        await this.write(record);
        this.unrecorded = null;
      } catch (e) {
        this.deps.log.error({ err: (e as Error).message, version: rec.version }, 'could not record the serving version in the shared store; retrying in the background');
        throw new RecordError(`${rec.version} serves on this replica, but the shared store could not record it for the other replicas yet (retried in the background)`);
      }
      return rec;
    });
  }

  private async write(r: Omit<ServingRecord, 'updatedAt'>): Promise<void> {
    await this.ensureTables();
    // One statement: the notification is delivered when the row commits.
    await this.pool.query(
      `WITH up AS (
         INSERT INTO ${this.t.serving} (id, version, is_base, replica, reason, updated_at) VALUES (1, $1, $2, $3, $4, now())
         ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, is_base = EXCLUDED.is_base, replica = EXCLUDED.replica, reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at
         RETURNING version)
       SELECT pg_notify($5, version) FROM up`,
      [r.version, r.isBase, r.replica, r.reason, this.channel],
    );
  }

  /** Follows the serving row from now on. */
  start(): void {
    this.stopped = false;
    this.pollTimer = setInterval(() => this.check(), this.settings.pollMs);
    this.pollTimer.unref();
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.pollTimer = this.reconnectTimer = null;
    const c = this.listener;
    this.listener = null;
    await c?.end().catch(() => undefined);
    await this.checking?.catch(() => undefined);
    await this.lock.catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }

  /** Resolves once a read of the row started now has been applied (tests). */
  async sync(): Promise<void> {
    this.check();
    while (this.checking) await this.checking;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const c = new pg.Client({ connectionString: this.connectionString, application_name: 'recserve-serving-listener', keepAlive: true, connectionTimeoutMillis: this.settings.queryTimeoutMs, query_timeout: this.settings.queryTimeoutMs });
    const lost = (e: Error) => {
      c.removeAllListeners('notification');
      if (this.listener === c) this.listener = null;
      void c.end().catch(() => undefined);
      if (this.stopped || this.reconnectTimer) return;
      if (!this.outageLogged) {
        this.outageLogged = true;
        this.deps.log.warn({ err: e.message }, 'serving-version listener lost the store; reconnecting (the version serving stays)');
      }
      const delay = Math.min(this.settings.maxReconnectMs, this.settings.reconnectMs * 2 ** Math.min(this.attempt++, 16));
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = null;
        void this.connect();
      }, delay);
      this.reconnectTimer.unref();
    };
    c.on('error', lost);
    c.on('end', () => lost(new Error('connection ended')));
    try {
      await c.connect();
      await this.ensureTables();
      c.on('notification', (n) => {
        if (n.channel === this.channel) this.check();
      });
      await c.query(`LISTEN ${quoteIdent(this.channel)}`);
      if (this.stopped) return void (await c.end().catch(() => undefined));
      this.listener = c;
      this.attempt = 0;
      this.outageLogged = false;
      this.check(); // catch up on what changed while not listening
    } catch (e) {
      lost(e as Error);
    }
  }

  /** Reads the row and follows it; one at a time, once more if asked meanwhile. */
  private check(): void {
    if (this.stopped) return;
    if (this.checking) {
      this.checkAgain = true;
      return;
    }
    this.checking = this.exclusive(() => this.follow())
      .catch((e) => {
        if (!this.outageLogged) this.deps.log.warn({ err: (e as Error).message }, 'could not read the serving version from the shared store');
      })
      .finally(() => {
        this.checking = null;
        if (this.checkAgain) {
          this.checkAgain = false;
          this.check();
        }
      });
  }

  private async follow(): Promise<void> {
    const { registry, log } = this.deps;
    if (this.unrecorded) {
      await this.write(this.unrecorded);
      this.unrecorded = null;
    }
    const row = await this.serving();
    if (!row || !registry.current) return;
    const key = `${row.version}@${row.updatedAt}`;
    if (this.failed === key) return;
    let target: string;
    try {
      target = path.resolve(row.isBase ? (registry.baseModelDir ?? registry.versionDir('base')) : registry.versionDir(row.version));
    } catch (e) {
      this.failed = key;
      log.error({ version: row.version, by: row.replica, err: (e as Error).message }, `cannot follow the serving version ${row.version}: it is not under this replica's versions root (is it the shared volume?); still serving ${registry.current.version}`);
      return;
    }
    if (registry.activeDir === target) return;
    const t0 = Date.now();
    try {
      const rec = registry.previousDir === target ? await registry.rollback() : await registry.load(target);
      this.followed++;
      log.info({ version: rec.version, by: row.replica, reason: row.reason, ms: Date.now() - t0 }, 'swapped to the version the shared store names');
    } catch (e) {
      if (!(e instanceof ModelRefusedError || e instanceof ModelNotFoundError)) throw e;
      this.failed = key; // logged by the registry; the old version keeps serving
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }
}

/** The swap happened on this replica but the shared record of it did not (yet). */
export class RecordError extends DomainError {
  constructor(message: string) {
    super('unavailable', message);
  }
}

function toRun(r: Record<string, any>): RetrainRun {
  return {
    id: Number(r.id),
    replica: r.replica,
    trigger: r.trigger,
    startedAt: new Date(r.started_at).toISOString(),
    finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
    outcome: r.outcome,
    version: r.version,
    detail: r.detail ?? null,
  };
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
