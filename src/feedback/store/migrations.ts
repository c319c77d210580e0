// Versioned schema migrations, one list for both backends. Each migration runs once, in its own
// transaction, and is recorded in schema_migrations; a database newer than this build is refused
// rather than written with a schema the code does not know. Never edit a released migration: add one.
import { StoreSchemaError } from './contract.js';

export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'feedback and interactions',
    sqlite: `
      CREATE TABLE feedback (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        puid          TEXT,
        model_version TEXT,
        reward        REAL NOT NULL CHECK (reward >= 0 AND reward <= 1),
        transport     TEXT NOT NULL,
        n_rows        INTEGER NOT NULL,
        created_at    INTEGER NOT NULL
      );
      CREATE TABLE interactions (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        feedback_id   INTEGER NOT NULL REFERENCES feedback(id),
        user_id       TEXT NOT NULL,
        item_id       TEXT NOT NULL,
        reward        REAL NOT NULL CHECK (reward >= 0 AND reward <= 1),
        kind          TEXT NOT NULL CHECK (kind IN ('list', 'chosen', 'skipped')),
        served_by     TEXT NOT NULL,
        ts            INTEGER NOT NULL,
        puid          TEXT,
        model_version TEXT
      );
      CREATE INDEX interactions_user ON interactions (user_id, id);
      CREATE INDEX interactions_feedback ON interactions (feedback_id);
    `,
    postgres: `
      CREATE TABLE feedback (
        id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        puid          TEXT,
        model_version TEXT,
        reward        DOUBLE PRECISION NOT NULL CHECK (reward >= 0 AND reward <= 1),
        transport     TEXT NOT NULL,
        n_rows        INTEGER NOT NULL,
        created_at    BIGINT NOT NULL
      );
      CREATE TABLE interactions (
        id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        feedback_id   BIGINT NOT NULL REFERENCES feedback(id),
        user_id       TEXT NOT NULL,
        item_id       TEXT NOT NULL,
        reward        DOUBLE PRECISION NOT NULL CHECK (reward >= 0 AND reward <= 1),
        kind          TEXT NOT NULL CHECK (kind IN ('list', 'chosen', 'skipped')),
        served_by     TEXT NOT NULL,
        ts            BIGINT NOT NULL,
        puid          TEXT,
        model_version TEXT
      );
      CREATE INDEX interactions_user ON interactions (user_id, id);
      CREATE INDEX interactions_feedback ON interactions (feedback_id);
    `,
  },
  {
    version: 2,
    name: 'bandit arms (per-item Beta posterior counts), backfilled from bandit-served interactions',
    sqlite: `
      CREATE TABLE bandit_arms (
        item_id   TEXT PRIMARY KEY,
        successes REAL NOT NULL DEFAULT 0,
        failures  REAL NOT NULL DEFAULT 0,
        trials    INTEGER NOT NULL DEFAULT 0
      );
      INSERT INTO bandit_arms (item_id, successes, failures, trials)
        SELECT item_id, SUM(reward), SUM(1 - reward), COUNT(*) FROM interactions
        WHERE served_by IN ('cold_start', 'exploration') GROUP BY item_id;
    `,
    postgres: `
      CREATE TABLE bandit_arms (
        item_id   TEXT PRIMARY KEY,
        successes DOUBLE PRECISION NOT NULL DEFAULT 0,
        failures  DOUBLE PRECISION NOT NULL DEFAULT 0,
        trials    BIGINT NOT NULL DEFAULT 0
      );
      INSERT INTO bandit_arms (item_id, successes, failures, trials)
        SELECT item_id, SUM(reward), SUM(1 - reward), COUNT(*) FROM interactions
        WHERE served_by IN ('cold_start', 'exploration') GROUP BY item_id;
    `,
  },
  {
    version: 3,
    // Written by replicas only (never by a client): puid → what the prediction showed, in the packed
    // format of the in-process PredictionMemory. Read by the replica that receives a feedback for a
    // prediction another replica served. SQLite gets the table too (unused: one replica, in-process
    // memory) so both backends stay at the same schema version.
    name: 'shared prediction memory (puid → model version, packed shown lists), swept by age and total bytes',
    sqlite: `
      CREATE TABLE predictions (
        puid          TEXT PRIMARY KEY,
        model_version TEXT NOT NULL,
        packed        TEXT NOT NULL,
        bytes         INTEGER NOT NULL,
        created_at    INTEGER NOT NULL
      );
      CREATE INDEX predictions_created ON predictions (created_at);
    `,
    postgres: `
      CREATE TABLE predictions (
        puid          TEXT PRIMARY KEY,
        model_version TEXT NOT NULL,
        packed        TEXT NOT NULL,
        bytes         INTEGER NOT NULL,
        created_at    BIGINT NOT NULL
      );
      CREATE INDEX predictions_created ON predictions (created_at);
    `,
  },
];

export const LATEST_SCHEMA = MIGRATIONS[MIGRATIONS.length - 1].version;

/** The migrations still to apply to a database at `current`; refuses a database from a newer build. */
export function pendingMigrations(current: number, target = LATEST_SCHEMA): Migration[] {
  if (current > LATEST_SCHEMA) {
    throw new StoreSchemaError(
      `the interaction store is at schema version ${current}, newer than this build knows (${LATEST_SCHEMA}); upgrade recserve or point it at another store`,
    );
  }
  return MIGRATIONS.filter((m) => m.version > current && m.version <= target);
}
