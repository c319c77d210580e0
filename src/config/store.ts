// The interaction store (src/feedback/store/): how long requests wait on it and how many may, how
// often an unavailable store is retried, and the PostgreSQL pool per replica.
import { defaultsOf, intField, type Section } from './setting.js';

export interface StoreSettings {
  /** Wait between attempts to reopen an unavailable store (ms). */
  storeRetryMs: number;
  /** Longest a request waits on one store operation, connection wait included, before a 503 (ms). */
  storeTimeoutMs: number;
  /** Most store operations waiting for a PostgreSQL connection; beyond, 503 at once. */
  storeMaxWaiting: number;
  /** PostgreSQL connections per replica. */
  storePoolSize: number;
}

export const STORE: Section<StoreSettings> = {
  storeRetryMs: intField('RECSERVE_STORE_RETRY_MS', 2000),
  storeTimeoutMs: intField('RECSERVE_STORE_TIMEOUT_MS', 2000, 1),
  storeMaxWaiting: intField('RECSERVE_STORE_MAX_WAITING', 64),
  storePoolSize: intField('RECSERVE_STORE_POOL_SIZE', 10, 1),
};

export const STORE_DEFAULTS: StoreSettings = defaultsOf(STORE);
