// The embedded interaction store: one SQLite file (better-sqlite3) in WAL mode with synchronous=FULL,
// so a committed feedback survives a process kill and a power cut. better-sqlite3 is synchronous: a
// write holds the event loop for one fsync, which is what "stored before acknowledged" costs.
// A database locked by another process must not hold the event loop either: with safety bounds the
// busy handler waits only a short slice per attempt, and the attempt is retried asynchronously until
// the request deadline (RECSERVE_STORE_TIMEOUT_MS), then the operation answers unavailable.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { pendingMigrations } from './migrations.js';
import {
  checkRows,
  mergeArms,
  StoreSchemaError,
  StoreUnavailableError,
  type ArmDelta,
  type ArmState,
  type FeedbackEntry,
  type Interaction,
  type InteractionStore,
  type NewInteraction,
  type StoreSafetySettings,
  type StoreStats,
  toInteraction,
  type InteractionRow,
} from './contract.js';

/** Longest the synchronous busy handler may hold the event loop per attempt, once the store is open (ms). */
const BUSY_SLICE_MS = 50;
/** Busy timeout while opening and migrating (ms); tools without safety bounds use it throughout. */
const OPEN_BUSY_TIMEOUT_MS = 5000;


export class SqliteStore implements InteractionStore {
  readonly backend = 'sqlite' as const;
  private readonly recordTx: (entry: FeedbackEntry, rows: NewInteraction[], arms: ArmDelta[]) => number;
  private readonly stmt;
  private closed = false;

  private constructor(
    /** The open database (tests use it to simulate a full disk). */
    readonly db: Database.Database,
    readonly location: string,
    /** Deadline of one operation while the database is locked (undefined: the busy timeout alone). */
    private readonly timeoutMs: number | undefined,
  ) {
    this.stmt = {
      feedback: db.prepare(
        'INSERT INTO feedback (puid, model_version, reward, transport, n_rows, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      interaction: db.prepare(
        'INSERT INTO interactions (feedback_id, user_id, item_id, reward, kind, served_by, ts, puid, model_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      arm: db.prepare(
        `INSERT INTO bandit_arms (item_id, successes, failures, trials) VALUES (?, ?, ?, ?)
         ON CONFLICT (item_id) DO UPDATE SET successes = successes + excluded.successes,
           failures = failures + excluded.failures, trials = trials + excluded.trials`,
      ),
      user: db.prepare('SELECT * FROM (SELECT * FROM interactions WHERE user_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id'),
      usersSince: db.prepare('SELECT user_id, MAX(id) AS last FROM interactions WHERE id > ? GROUP BY user_id ORDER BY last DESC LIMIT ?'),
      scan: db.prepare('SELECT * FROM interactions WHERE id > ? ORDER BY id LIMIT ?'),
      arms: db.prepare('SELECT item_id, successes, failures, trials FROM bandit_arms ORDER BY item_id'),
      stats: db.prepare(
        `SELECT (SELECT COUNT(*) FROM feedback) AS feedback, (SELECT COUNT(*) FROM interactions) AS interactions,
                (SELECT COUNT(DISTINCT user_id) FROM interactions) AS users, (SELECT COALESCE(MAX(id), 0) FROM interactions) AS max_id`,
      ),
      version: db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations'),
    };
    this.recordTx = db.transaction((entry: FeedbackEntry, rows: NewInteraction[], arms: ArmDelta[]) => {
      const s = this.stmt;
      const fid = Number(s.feedback.run(entry.puid, entry.modelVersion, entry.reward, entry.transport, rows.length, entry.createdAt).lastInsertRowid);
      for (const r of rows) s.interaction.run(fid, r.userId, r.itemId, r.reward, r.kind, r.servedBy, entry.createdAt, entry.puid, entry.modelVersion);
      for (const a of mergeArms(arms)) s.arm.run(a.itemId, a.successes, a.failures, a.trials);
      return fid;
    });
  }

  /** Opens (creating the directory and file) and migrates to the latest schema. */
  static open(file: string, safety: Partial<StoreSafetySettings> = {}): SqliteStore {
    const timeoutMs = safety.timeoutMs;
    let db: Database.Database;
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      db = new Database(file, { timeout: timeoutMs === undefined ? OPEN_BUSY_TIMEOUT_MS : Math.min(timeoutMs, OPEN_BUSY_TIMEOUT_MS) });
      db.pragma('journal_mode = WAL');
      // FULL: the WAL is fsync'd at every commit, so an acknowledged feedback survives a power cut too.
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
    } catch (e) {
      throw new StoreUnavailableError(`cannot open the SQLite interaction store ${file}: ${(e as Error).message}`, e);
    }
    try {
      migrate(db);
    } catch (e) {
      db.close();
      if (e instanceof StoreSchemaError) throw e;
      throw new StoreUnavailableError(`cannot migrate the SQLite interaction store ${file}: ${(e as Error).message}`, e);
    }
    if (timeoutMs !== undefined) db.pragma(`busy_timeout = ${Math.min(BUSY_SLICE_MS, timeoutMs)}`);
    return new SqliteStore(db, file, timeoutMs);
  }

  async record(entry: FeedbackEntry, rows: NewInteraction[], arms: ArmDelta[]): Promise<number> {
    checkRows(entry, rows, arms);
    return this.guardBusy('write feedback to', () => this.recordTx(entry, rows, arms));
  }

  async userInteractions(userId: string, limit = 1000): Promise<Interaction[]> {
    return this.guardBusy('read', () => (this.stmt.user.all(userId, limit) as InteractionRow[]).map(toInteraction));
  }

  async usersSince(afterId: number, limit: number): Promise<string[]> {
    return this.guardBusy('read', () => (this.stmt.usersSince.all(afterId, limit) as { user_id: string }[]).map((r) => r.user_id));
  }

  async scan(afterId: number, limit: number): Promise<Interaction[]> {
    return this.guardBusy('read', () => (this.stmt.scan.all(afterId, limit) as InteractionRow[]).map(toInteraction));
  }

  async arms(): Promise<ArmState[]> {
    return this.guardBusy('read', () =>
      (this.stmt.arms.all() as { item_id: string; successes: number; failures: number; trials: number }[]).map((r) => ({
        itemId: r.item_id,
        successes: r.successes,
        failures: r.failures,
        trials: Number(r.trials),
      })),
    );
  }

  async stats(): Promise<StoreStats> {
    return this.guardBusy('read', () => {
      const r = this.stmt.stats.get() as { feedback: number; interactions: number; users: number; max_id: number };
      return { feedback: r.feedback, interactions: r.interactions, users: r.users, maxInteractionId: Number(r.max_id) };
    });
  }

  async schemaVersion(): Promise<number> {
    return (this.stmt.version.get() as { v: number }).v;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  /**
   * `guard`, retried while another connection holds the write lock, until the deadline; each attempt
   * blocks the event loop at most one busy slice, the waits between attempts do not block it.
   */
  private async guardBusy<T>(what: string, fn: () => T): Promise<T> {
    if (this.timeoutMs === undefined) return this.guard(what, fn);
    const deadline = Date.now() + this.timeoutMs;
    for (let pause = 5; ; pause = Math.min(2 * pause, 100)) {
      try {
        return this.guard(what, fn);
      } catch (e) {
        if (!isBusy((e as Error).cause)) throw e;
        if (Date.now() + pause >= deadline) {
          throw new StoreUnavailableError(
            `cannot ${what} the SQLite interaction store ${this.location}: another connection held its lock for ${this.timeoutMs} ms (RECSERVE_STORE_TIMEOUT_MS)`,
            e,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  private guard<T>(what: string, fn: () => T): T {
    if (this.closed) throw new StoreUnavailableError('the interaction store is closed');
    try {
      return fn();
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      throw new StoreUnavailableError(`cannot ${what} the SQLite interaction store ${this.location}: ${(e as Error).message}${code ? ` (${code})` : ''}`, e);
    }
  }
}

/** SQLITE_BUSY (and its extended codes) or SQLITE_LOCKED: someone else holds the lock, worth retrying. */
function isBusy(e: unknown): boolean {
  const code = (e as { code?: string } | undefined)?.code ?? '';
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const current = () => (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }).v;
  for (const m of pendingMigrations(current())) {
    // IMMEDIATE takes the write lock first, so two processes opening a fresh file cannot both migrate.
    db.transaction(() => {
      if (current() >= m.version) return;
      db.exec(m.sqlite);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
    }).immediate();
  }
}
