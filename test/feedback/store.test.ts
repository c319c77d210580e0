// The store contract against both backends. PostgreSQL runs against a real server (RECSERVE_TEST_PG_URL,
// default postgres://recserve:recserve@127.0.0.1:5432/recserve_test); without one the pg half is skipped
// with a visible message locally, and fails in CI (CI must provide the server).
import { rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/feedback/store/postgres.js';
import { SqliteStore } from '../../src/feedback/store/sqlite.js';
import { describeStoreUrl, openStore, StoreUnavailableError } from '../../src/feedback/store/index.js';
import { PG_URL, pgExec, pgReachable, tempDir, uniqueSchema } from './helpers.js';
import { storeContract } from './store-contract.js';

let dir = '';
storeContract('SQLite (better-sqlite3, WAL)', {
  dialect: 'sqlite',
  async fresh() {
    dir = tempDir('recserve-store-');
  },
  async open() {
    return SqliteStore.open(path.join(dir, 'interactions.db'));
  },
  async exec(sql) {
    const db = new Database(path.join(dir, 'interactions.db'));
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
  },
  breakInteractionsSql: `CREATE TRIGGER no_room BEFORE INSERT ON interactions BEGIN SELECT RAISE(ABORT, 'database or disk is full (simulated)'); END`,
  async cleanup() {
    rmSync(dir, { recursive: true, force: true });
  },
});

const havePg = await pgReachable();
if (!havePg && !process.env.CI) {
  console.warn(`[feedback/store.test] PostgreSQL SKIPPED: no server answers at ${PG_URL.replace(/:[^:@/]*@/, ':***@')} (set RECSERVE_TEST_PG_URL; .ci/run starts one). CI runs it.`);
}
let schema = '';
if (havePg || process.env.CI) {
  storeContract('PostgreSQL (pg)', {
    dialect: 'postgres',
    async fresh() {
      schema = uniqueSchema('contract');
    },
    async open() {
      return PostgresStore.open(`${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`);
    },
    async exec(sql) {
      await pgExec(`CREATE SCHEMA IF NOT EXISTS ${schema}; SET search_path TO ${schema}; ${sql}`);
    },
    breakInteractionsSql: `CREATE FUNCTION no_room() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'could not extend file (simulated)' USING ERRCODE = '53100'; END $$;
      CREATE TRIGGER no_room BEFORE INSERT ON interactions FOR EACH STATEMENT EXECUTE FUNCTION no_room();`,
    async cleanup() {
      await pgExec(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
  });
}

describe('opening a store', () => {
  it('defaults to SQLite under the data directory; URLs pick the backend', () => {
    expect(describeStoreUrl({ url: null, dataDir: '/d' })).toEqual({ backend: 'sqlite', file: '/d/interactions.db' });
    expect(describeStoreUrl({ url: 'sqlite:/x/y.db', dataDir: '/d' })).toEqual({ backend: 'sqlite', file: '/x/y.db' });
    expect(describeStoreUrl({ url: 'postgresql://u:p@h/db', dataDir: '/d' })).toMatchObject({ backend: 'postgres' });
    expect(() => describeStoreUrl({ url: 'mysql://u:secret@h/db', dataDir: '/d' })).toThrow(/u:\*\*\*@h/);
  });

  it('reports an unopenable SQLite file as unavailable, naming it', async () => {
    const d = tempDir('recserve-store-');
    try {
      // A directory where the database file should be: no amount of permissions makes that writable.
      const { mkdirSync } = await import('node:fs');
      mkdirSync(path.join(d, 'interactions.db'));
      await expect(openStore({ url: null, dataDir: d })).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(openStore({ url: null, dataDir: d })).rejects.toThrow(/interactions\.db/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('reports an unreachable PostgreSQL server as unavailable, without the password', async () => {
    const err = await PostgresStore.open('postgres://recserve:hunter2@127.0.0.1:1/none', { connectTimeoutMs: 1000 }).catch((e) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err.message).not.toContain('hunter2');
  });
});
