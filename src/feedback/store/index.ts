// The interaction store: every accepted feedback becomes one `feedback` row and its interaction rows,
// written in one transaction and committed (fsync'd) before the call is acknowledged. The bandit's
// per-item counts live in the same transaction, so the posterior can never disagree with the rows.
// Two backends implement the interface — SQLite (embedded default, WAL) and PostgreSQL (shared by
// replicas) — and test/feedback/store-contract.ts runs the same suite against both.
import path from 'node:path';
import { redact, StoreSchemaError, type InteractionStore, type StoreSafetySettings } from './contract.js';

export * from './contract.js';


export interface OpenStoreOptions {
  /** RECSERVE_STORE_URL: postgres://… or postgresql://… (PostgreSQL), sqlite:PATH / file:PATH, else null. */
  url: string | null;
  /** Where the SQLite file goes when no URL names one: <dataDir>/interactions.db. */
  dataDir: string;
  /** Bounds on what a request waits for (the server passes them; tools such as the CLI do not). */
  safety?: StoreSafetySettings;
}

export const SQLITE_FILE = 'interactions.db';

/** Where a store URL points, without opening it. */
export function describeStoreUrl(opts: OpenStoreOptions): { backend: 'sqlite'; file: string } | { backend: 'postgres'; url: string } {
  const url = opts.url?.trim() || null;
  if (url && /^postgres(ql)?:\/\//i.test(url)) return { backend: 'postgres', url };
  if (url && /^(sqlite|file):/i.test(url)) {
    const p = url.replace(/^(sqlite|file):(\/\/)?/i, '');
    return { backend: 'sqlite', file: path.resolve(p) };
  }
  if (url) throw new StoreSchemaError(`RECSERVE_STORE_URL=${redact(url)} is neither postgres://… nor sqlite:PATH`);
  return { backend: 'sqlite', file: path.join(opts.dataDir, SQLITE_FILE) };
}

/** Opens (creating and migrating) the store a URL names; SQLite under dataDir by default. */
export async function openStore(opts: OpenStoreOptions): Promise<InteractionStore> {
  const where = describeStoreUrl(opts);
  if (where.backend === 'postgres') {
    const { PostgresStore } = await import('./postgres.js');
    return PostgresStore.open(where.url, opts.safety ?? {});
  }
  const { SqliteStore } = await import('./sqlite.js');
  return SqliteStore.open(where.file, opts.safety ?? {});
}
