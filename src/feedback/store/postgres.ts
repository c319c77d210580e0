// The shared interaction store: PostgreSQL through a `pg` pool, so several replicas write one store.
// A feedback is one transaction (feedback row, interaction rows, bandit upserts) committed with the
// server's synchronous_commit before the call is acknowledged. `?schema=NAME` in the URL selects a
// schema (default public); migrations run under an advisory lock so replicas starting together
// migrate once. With safety bounds (the server's store) every operation a request waits on has a
// deadline covering the connection wait and the statements: the server cancels a statement at
// statement_timeout, and a client-side timer destroys the connection when the server does not answer
// at all; at most maxWaiting operations queue for a connection, the rest are refused at once.
import pg from 'pg';
import { STORE_DEFAULTS } from '../../config/store.js';
import { pendingMigrations } from './migrations.js';
import {
  checkRows,
  mergeArms,
  redact,
  StoreSchemaError,
  type StoreSafetySettings,
  StoreUnavailableError,
  type ArmDelta,
  type ArmState,
  type FeedbackEntry,
  type Interaction,
  type InteractionStore,
  type NewInteraction,
  type SharedPredictionRow,
  type StoreStats,
  toInteraction,
} from './contract.js';

/** Rows per INSERT statement (9 parameters each, well under PostgreSQL's 65535). */
const CHUNK = 2000;
/** Budget of work no request waits on (migrations, loading the bandit, warm-up reads, retraining counts). */
const MAINTENANCE_MIN_MS = 30_000;

export interface PostgresOpenOptions extends Partial<StoreSafetySettings> {
  /** How long a connection attempt may take (default: timeoutMs, else 5 s). */
  connectTimeoutMs?: number;
}

export class PostgresStore implements InteractionStore {
  readonly backend = 'postgres' as const;
  private closed = false;
  private readonly t: { feedback: string; interactions: string; arms: string; migrations: string; predictions: string };

  private constructor(
    readonly pool: pg.Pool,
    readonly location: string,
    readonly schema: string,
    /** Deadline of request operations (undefined: tools such as the CLI, which wait as long as it takes). */
    private readonly timeoutMs: number | undefined,
    private readonly maxWaiting: number | undefined,
  ) {
    const q = quoteIdent(schema);
    this.t = { feedback: `${q}.feedback`, interactions: `${q}.interactions`, arms: `${q}.bandit_arms`, migrations: `${q}.schema_migrations`, predictions: `${q}.predictions` };
  }

  /** Connects, creates the schema if needed and migrates to the latest version. */
  static async open(url: string, opts: PostgresOpenOptions = {}): Promise<PostgresStore> {
    const { connectionString, schema } = splitSchema(url);
    const timeoutMs = opts.timeoutMs;
    const pool = new pg.Pool({
      connectionString,
      max: opts.poolSize ?? STORE_DEFAULTS.storePoolSize,
      // Bounds the wait for a pooled connection as well as a new connection's handshake.
      connectionTimeoutMillis: opts.connectTimeoutMs ?? timeoutMs ?? 5000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      application_name: 'recserve',
      ...(timeoutMs
        ? {
            // The server cancels a statement stuck on a lock itself; the connection stays usable.
            statement_timeout: timeoutMs,
            // A transaction whose client vanished (destroyed after a timeout) must not hold its locks for long.
            idle_in_transaction_session_timeout: Math.max(10_000, 5 * timeoutMs),
          }
        : { query_timeout: 30_000 }),
    });
    // An idle client losing its connection must not crash the process; the next query reports it.
    pool.on('error', () => undefined);
    const store = new PostgresStore(pool, redact(url), schema, timeoutMs, opts.maxWaiting);
    try {
      await store.migrate();
    } catch (e) {
      await pool.end().catch(() => undefined);
      if (e instanceof StoreSchemaError) throw e;
      const why = e instanceof StoreUnavailableError ? e.message : `cannot open the PostgreSQL interaction store ${store.location}: ${describe(e)}`;
      throw new StoreUnavailableError(why, e);
    }
    return store;
  }

  private get maintenanceMs(): number | undefined {
    return this.timeoutMs === undefined ? undefined : Math.max(MAINTENANCE_MIN_MS, 10 * this.timeoutMs);
  }

  private async migrate(): Promise<void> {
    await this.withClient('migrate', this.maintenanceMs, async (client) => {
      const lockKey = `recserve-migrations:${this.schema}`;
      // Waiting for another replica's migration, or building an index, may outlast statement_timeout.
      if (this.timeoutMs !== undefined) await client.query('SET statement_timeout = 0');
      try {
        await client.query('SELECT pg_advisory_lock(hashtext($1))', [lockKey]);
        try {
          await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`);
          await client.query(
            `CREATE TABLE IF NOT EXISTS ${this.t.migrations} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
          );
          const { rows } = await client.query(`SELECT COALESCE(MAX(version), 0) AS v FROM ${this.t.migrations}`);
          for (const m of pendingMigrations(Number(rows[0].v))) {
            await client.query('BEGIN');
            try {
              await client.query(`SET LOCAL search_path TO ${quoteIdent(this.schema)}`);
              await client.query(m.postgres);
              await client.query(`INSERT INTO ${this.t.migrations} (version, name, applied_at) VALUES ($1, $2, $3)`, [m.version, m.name, Date.now()]);
              await client.query('COMMIT');
            } catch (e) {
              await client.query('ROLLBACK').catch(() => undefined);
              throw new Error(`migration ${m.version} (${m.name}) failed: ${(e as Error).message}`);
            }
          }
        } finally {
          await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => undefined);
        }
      } finally {
        if (this.timeoutMs !== undefined) await client.query('RESET statement_timeout').catch(() => undefined);
      }
    });
  }

  async record(entry: FeedbackEntry, rows: NewInteraction[], arms: ArmDelta[]): Promise<number> {
    checkRows(entry, rows, arms);
    return this.withClient('write feedback to', this.timeoutMs, async (client) => {
      await client.query('BEGIN');
      try {
        const f = await client.query(
          `INSERT INTO ${this.t.feedback} (puid, model_version, reward, transport, n_rows, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
          [entry.puid, entry.modelVersion, entry.reward, entry.transport, rows.length, entry.createdAt],
        );
        const fid = Number(f.rows[0].id);
        for (let s = 0; s < rows.length; s += CHUNK) {
          const part = rows.slice(s, s + CHUNK);
          const values: unknown[] = [];
          const tuples = part.map((r, j) => {
            values.push(fid, r.userId, r.itemId, r.reward, r.kind, r.servedBy, entry.createdAt, entry.puid, entry.modelVersion);
            const o = j * 9;
            return `($${o + 1}, $${o + 2}, $${o + 3}, $${o + 4}, $${o + 5}, $${o + 6}, $${o + 7}, $${o + 8}, $${o + 9})`;
          });
          await client.query(
            `INSERT INTO ${this.t.interactions} (feedback_id, user_id, item_id, reward, kind, served_by, ts, puid, model_version) VALUES ${tuples.join(', ')}`,
            values,
          );
        }
        const merged = mergeArms(arms);
        for (let s = 0; s < merged.length; s += CHUNK) {
          const part = merged.slice(s, s + CHUNK);
          const values: unknown[] = [];
          const tuples = part.map((a, j) => {
            values.push(a.itemId, a.successes, a.failures, a.trials);
            const o = j * 4;
            return `($${o + 1}, $${o + 2}, $${o + 3}, $${o + 4})`;
          });
          // Sorted by item id (mergeArms), so concurrent transactions lock arms in the same order.
          await client.query(
            `INSERT INTO ${this.t.arms} AS a (item_id, successes, failures, trials) VALUES ${tuples.join(', ')}
             ON CONFLICT (item_id) DO UPDATE SET successes = a.successes + EXCLUDED.successes,
               failures = a.failures + EXCLUDED.failures, trials = a.trials + EXCLUDED.trials`,
            values,
          );
        }
        await client.query('COMMIT');
        return fid;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  }

  async userInteractions(userId: string, limit = 1000): Promise<Interaction[]> {
    // Fold-in reads after a feedback: the feedback's answer waits on it, so it has the request deadline.
    const r = await this.query(
      `SELECT * FROM (SELECT * FROM ${this.t.interactions} WHERE user_id = $1 ORDER BY id DESC LIMIT $2) t ORDER BY id`,
      [userId, limit],
      this.timeoutMs,
    );
    return r.rows.map(toInteraction);
  }

  async usersSince(afterId: number, limit: number): Promise<string[]> {
    const r = await this.query(
      `SELECT user_id, MAX(id) AS last FROM ${this.t.interactions} WHERE id > $1 GROUP BY user_id ORDER BY last DESC LIMIT $2`,
      [afterId, limit],
    );
    return r.rows.map((x) => x.user_id as string);
  }

  async scan(afterId: number, limit: number): Promise<Interaction[]> {
    const r = await this.query(`SELECT * FROM ${this.t.interactions} WHERE id > $1 ORDER BY id LIMIT $2`, [afterId, limit]);
    return r.rows.map(toInteraction);
  }

  async arms(): Promise<ArmState[]> {
    const r = await this.query(`SELECT item_id, successes, failures, trials FROM ${this.t.arms} ORDER BY item_id`);
    return r.rows.map((x) => ({ itemId: x.item_id, successes: Number(x.successes), failures: Number(x.failures), trials: Number(x.trials) }));
  }

  async stats(): Promise<StoreStats> {
    const r = await this.query(
      `SELECT (SELECT COUNT(*) FROM ${this.t.feedback}) AS feedback, (SELECT COUNT(*) FROM ${this.t.interactions}) AS interactions,
              (SELECT COUNT(DISTINCT user_id) FROM ${this.t.interactions}) AS users, (SELECT COALESCE(MAX(id), 0) FROM ${this.t.interactions}) AS max_id`,
    );
    const x = r.rows[0];
    return { feedback: Number(x.feedback), interactions: Number(x.interactions), users: Number(x.users), maxInteractionId: Number(x.max_id) };
  }

  async schemaVersion(): Promise<number> {
    const r = await this.query(`SELECT COALESCE(MAX(version), 0) AS v FROM ${this.t.migrations}`);
    return Number(r.rows[0].v);
  }

  // --- shared prediction memory (shared-predictions.ts): written in batches off the predict path ---

  async putPredictions(rows: SharedPredictionRow[]): Promise<void> {
    if (rows.length === 0) return;
    // A puid answered twice (a client reusing one) keeps its newest prediction, as the local memory does.
    const latest = new Map<string, SharedPredictionRow>();
    for (const r of rows) latest.set(r.puid, r);
    const unique = [...latest.values()];
    await this.withClient('write predictions to', this.timeoutMs, async (client) => {
      for (let s = 0; s < unique.length; s += CHUNK) {
        const values: unknown[] = [];
        const tuples = unique.slice(s, s + CHUNK).map((r, j) => {
          values.push(r.puid, r.modelVersion, r.packed, r.bytes, r.createdAt);
          const o = j * 5;
          return `($${o + 1}, $${o + 2}, $${o + 3}, $${o + 4}, $${o + 5})`;
        });
        await client.query(
          `INSERT INTO ${this.t.predictions} AS p (puid, model_version, packed, bytes, created_at) VALUES ${tuples.join(', ')}
           ON CONFLICT (puid) DO UPDATE SET model_version = EXCLUDED.model_version, packed = EXCLUDED.packed,
             bytes = EXCLUDED.bytes, created_at = EXCLUDED.created_at WHERE p.created_at <= EXCLUDED.created_at`,
          values,
        );
      }
    });
  }

  async getPrediction(puid: string, notBefore: number): Promise<SharedPredictionRow | null> {
    const r = await this.query(
      `SELECT puid, model_version, packed, bytes, created_at FROM ${this.t.predictions} WHERE puid = $1 AND created_at >= $2`,
      [puid, notBefore],
      this.timeoutMs,
    );
    const x = r.rows[0];
    return x ? { puid: x.puid, modelVersion: x.model_version, packed: x.packed, bytes: Number(x.bytes), createdAt: Number(x.created_at) } : null;
  }

  async expirePredictions(before: number, maxBytes: number): Promise<{ expired: number; evicted: number; swept: boolean }> {
    return this.withClient('sweep predictions in', this.maintenanceMs, async (client) => {
      await client.query('BEGIN');
      try {
        if (this.timeoutMs !== undefined) await client.query(`SET LOCAL statement_timeout = ${Math.round(this.maintenanceMs!)}`);
        // Every replica runs the sweep on a timer; one at a time does the work, the others skip it.
        const lock = await client.query('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS got', [`recserve-prediction-sweep:${this.schema}`]);
        if (!lock.rows[0].got) {
          await client.query('COMMIT');
          return { expired: 0, evicted: 0, swept: false };
        }
        const expired = await client.query(`DELETE FROM ${this.t.predictions} WHERE created_at < $1`, [before]);
        // Newest first, a running total of bytes: whatever lies past the cap goes, oldest rows first.
        const evicted = await client.query(
          `DELETE FROM ${this.t.predictions} WHERE puid IN (
             SELECT puid FROM (SELECT puid, SUM(bytes) OVER (ORDER BY created_at DESC, puid) AS running FROM ${this.t.predictions}) t
             WHERE running > $1)`,
          [maxBytes],
        );
        await client.query('COMMIT');
        return { expired: expired.rowCount ?? 0, evicted: evicted.rowCount ?? 0, swept: true };
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  /**
   * Runs `fn` on a pooled connection within `budgetMs` (connection wait included). Past the budget
   * the connection is destroyed, which fails whatever `fn` is waiting on, and the pool drops it.
   */
  private async withClient<T>(what: string, budgetMs: number | undefined, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('the interaction store is closed');
    if (this.maxWaiting !== undefined && this.pool.waitingCount >= this.maxWaiting) {
      throw new StoreUnavailableError(
        `cannot ${what} the PostgreSQL interaction store ${this.location}: ${this.pool.waitingCount} operations already wait for one of its ${this.pool.options.max} connections (RECSERVE_STORE_MAX_WAITING=${this.maxWaiting})`,
      );
    }
    const started = Date.now();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.unavailable(what, e);
    }
    // A connection dropped while we hold it reports through its query; without a listener the
    // client's 'error' event would be an uncaught exception.
    const swallow = () => undefined;
    client.on('error', swallow);
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    if (budgetMs !== undefined) {
      const left = budgetMs - (Date.now() - started);
      const expire = () => {
        timedOut = true;
        client.connection.stream.destroy();
      };
      if (left <= 0) expire();
      else timer = setTimeout(expire, left);
    }
    let broken: Error | undefined;
    try {
      if (timedOut) throw new Error('no connection in time');
      return await fn(client);
    } catch (e) {
      broken = e as Error;
      if (timedOut) {
        throw new StoreUnavailableError(
          `cannot ${what} the PostgreSQL interaction store ${this.location}: no answer within ${budgetMs} ms (RECSERVE_STORE_TIMEOUT_MS); the connection was dropped`,
          e,
        );
      }
      throw e instanceof StoreSchemaError ? e : this.unavailable(what, e);
    } finally {
      clearTimeout(timer);
      client.off('error', swallow);
      // A client whose work failed for a connection reason is destroyed, not reused.
      client.release(broken && (timedOut || isConnectionError(broken)) ? broken : undefined);
    }
  }

  private async query(sql: string, params: unknown[] = [], budgetMs = this.maintenanceMs): Promise<pg.QueryResult> {
    return this.withClient('read', budgetMs, async (client) => {
      if (budgetMs === undefined || budgetMs === this.timeoutMs) return client.query(sql, params);
      // Work no request waits on may outlast the request deadline (statement_timeout of the session).
      await client.query('BEGIN READ ONLY');
      try {
        await client.query(`SET LOCAL statement_timeout = ${Math.round(budgetMs)}`);
        const r = await client.query(sql, params);
        await client.query('COMMIT');
        return r;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  }

  private unavailable(what: string, e: unknown): StoreUnavailableError {
    return new StoreUnavailableError(`cannot ${what} the PostgreSQL interaction store ${this.location}: ${describe(e)}`, e);
  }
}

/** A driver error for the log: its message and SQLSTATE / errno code. */
function describe(e: unknown): string {
  const code = (e as { code?: string }).code;
  return `${(e as Error).message}${code ? ` (${code})` : ''}`;
}

/** Takes `schema=NAME` out of the URL's query (pg would pass unknown parameters to the server). */
export function splitSchema(url: string): { connectionString: string; schema: string } {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? 'public';
  u.searchParams.delete('schema');
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) throw new StoreSchemaError(`schema=${schema} is not a plain SQL identifier`);
  return { connectionString: u.toString(), schema };
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function isConnectionError(e: Error): boolean {
  const code = (e as { code?: string }).code ?? '';
  return code.startsWith('08') || code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'EPIPE' || /terminated|Connection/i.test(e.message);
}

