// The shared interaction store: PostgreSQL through a `pg` pool, so several replicas write one store.
// A feedback is one transaction (feedback row, interaction rows, bandit upserts) committed with the
// server's synchronous_commit before the call is acknowledged. `?schema=NAME` in the URL selects a
// schema (default public); migrations run under an advisory lock so replicas starting together
// migrate once.
import pg from 'pg';
import { pendingMigrations } from './migrations.js';
import { toInteraction } from './sqlite.js';
import {
  checkRows,
  mergeArms,
  redact,
  StoreSchemaError,
  StoreUnavailableError,
  type ArmDelta,
  type ArmState,
  type FeedbackEntry,
  type Interaction,
  type InteractionStore,
  type NewInteraction,
  type StoreStats,
} from './store.js';

/** Rows per INSERT statement (9 parameters each, well under PostgreSQL's 65535). */
const CHUNK = 2000;

export class PostgresStore implements InteractionStore {
  readonly backend = 'postgres' as const;
  private closed = false;
  private readonly t: { feedback: string; interactions: string; arms: string; migrations: string };

  private constructor(
    readonly pool: pg.Pool,
    readonly location: string,
    readonly schema: string,
  ) {
    const q = quoteIdent(schema);
    this.t = { feedback: `${q}.feedback`, interactions: `${q}.interactions`, arms: `${q}.bandit_arms`, migrations: `${q}.schema_migrations` };
  }

  /** Connects, creates the schema if needed and migrates to the latest version. */
  static async open(url: string, opts: { connectTimeoutMs?: number } = {}): Promise<PostgresStore> {
    const { connectionString, schema } = splitSchema(url);
    const pool = new pg.Pool({
      connectionString,
      max: 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      idleTimeoutMillis: 30_000,
      query_timeout: 30_000,
      application_name: 'recserve',
    });
    // An idle client losing its connection must not crash the process; the next query reports it.
    pool.on('error', () => undefined);
    const store = new PostgresStore(pool, redact(url), schema);
    try {
      await store.migrate();
    } catch (e) {
      await pool.end().catch(() => undefined);
      if (e instanceof StoreSchemaError) throw e;
      throw new StoreUnavailableError(`cannot open the PostgreSQL interaction store ${redact(url)}: ${(e as Error).message}`, e);
    }
    return store;
  }

  private async migrate(): Promise<void> {
    const client = await this.pool.connect();
    const lockKey = `recserve-migrations:${this.schema}`;
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
      client.release();
    }
  }

  async record(entry: FeedbackEntry, rows: NewInteraction[], arms: ArmDelta[]): Promise<number> {
    checkRows(entry, rows, arms);
    const client = await this.connect('write feedback to');
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
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
      broken = e as Error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw this.unavailable('write feedback to', e);
    } finally {
      // A client whose transaction failed for a connection reason is destroyed, not reused.
      client.release(broken && isConnectionError(broken) ? broken : undefined);
    }
  }

  async userInteractions(userId: string, limit = 1000): Promise<Interaction[]> {
    const r = await this.query(
      `SELECT * FROM (SELECT * FROM ${this.t.interactions} WHERE user_id = $1 ORDER BY id DESC LIMIT $2) t ORDER BY id`,
      [userId, limit],
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private async connect(what: string): Promise<pg.PoolClient> {
    if (this.closed) throw new StoreUnavailableError('the interaction store is closed');
    try {
      return await this.pool.connect();
    } catch (e) {
      throw this.unavailable(what, e);
    }
  }

  private async query(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
    if (this.closed) throw new StoreUnavailableError('the interaction store is closed');
    try {
      return await this.pool.query(sql, params);
    } catch (e) {
      throw this.unavailable('read', e);
    }
  }

  private unavailable(what: string, e: unknown): StoreUnavailableError {
    const code = (e as { code?: string }).code;
    return new StoreUnavailableError(`cannot ${what} the PostgreSQL interaction store ${this.location}: ${(e as Error).message}${code ? ` (${code})` : ''}`, e);
  }
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

