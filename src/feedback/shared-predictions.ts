// The shared prediction memory: with a PostgreSQL store, every replica writes what its predictions
// showed (puid → model version and the packed lists of predictions.ts) to one table, so a feedback by
// puid alone succeeds on any replica, not only on the one that answered the prediction.
//
// It stays off the predict latency path: a prediction only appends its (already packed) entry to an
// in-process buffer; a timer writes the buffer in multi-row INSERTs (every flushMs, or as soon as a
// batch is full). The buffer is bounded in bytes: while PostgreSQL is down or slow the oldest
// buffered rows are dropped and counted, a prediction never waits and never sees an error, and a
// flush failure is logged once per burst of failures. The table is bounded by age (the prediction TTL)
// and by total bytes, both enforced by a periodic sweep that one replica at a time runs.
//
// A feedback reads its local memory first; on a miss it reads the table, retrying briefly because the
// predicting replica's flush may still be in flight. Rows were written by replicas, never by clients,
// so they are trusted as the local memory is (the handler's source 'memory').
import client from 'prom-client';
import type { Logger } from '../telemetry/logger.js';
import type { SharedPredictionSettings } from '../config/predictions.js';
import type { PackedPrediction } from './predictions.js';
import type { InteractionStore, SharedPredictionRow } from './store/index.js';


/** Counts for metrics (sharedPredictionMetrics makes one on a registry). */
export interface SharedPredictionObserver {
  written(rows: number): void;
  flushed(ok: boolean): void;
  dropped(rows: number): void;
  lookup(result: 'hit' | 'miss' | 'error'): void;
  swept(expired: number, evicted: number): void;
  buffered(bytes: number): void;
}

/** Plain counters, kept whether or not metrics are wired (tests and logs read them). */
export interface SharedPredictionStats {
  written: number;
  flushes: number;
  flushFailures: number;
  dropped: number;
  hits: number;
  misses: number;
  lookupErrors: number;
  expired: number;
  evicted: number;
}

/** The Prometheus series of the shared memory, on the server's registry. */
export function sharedPredictionMetrics(registry: client.Registry): SharedPredictionObserver {
  const registers = [registry];
  const written = new client.Counter({ name: 'recserve_shared_predictions_written_total', help: 'Predictions written to the shared prediction memory', registers });
  const flushes = new client.Counter({ name: 'recserve_shared_predictions_flushes_total', help: 'Batched writes of the shared prediction memory by outcome', labelNames: ['outcome'] as const, registers });
  const dropped = new client.Counter({
    name: 'recserve_shared_predictions_dropped_total',
    help: 'Predictions dropped from the shared-memory write buffer (store down or slow, buffer full); feedback for them works only on the replica that served them',
    registers,
  });
  const lookups = new client.Counter({ name: 'recserve_shared_predictions_lookups_total', help: 'Feedback lookups in the shared prediction memory after a local miss, by result', labelNames: ['result'] as const, registers });
  const evictions = new client.Counter({ name: 'recserve_shared_predictions_evictions_total', help: 'Rows the sweep deleted from the shared prediction memory, by reason', labelNames: ['reason'] as const, registers });
  const buffer = new client.Gauge({ name: 'recserve_shared_predictions_buffer_bytes', help: 'Bytes waiting in the shared-memory write buffer', registers });
  return {
    written: (n) => written.inc(n),
    flushed: (ok) => flushes.inc({ outcome: ok ? 'ok' : 'failed' }),
    dropped: (n) => dropped.inc(n),
    lookup: (result) => lookups.inc({ result }),
    swept: (expired, evicted) => {
      if (expired) evictions.inc({ reason: 'expired' }, expired);
      if (evicted) evictions.inc({ reason: 'bytes' }, evicted);
    },
    buffered: (bytes) => buffer.set(bytes),
  };
}

/** Bytes a row costs in the buffer and in the table (ids are short ASCII; 64 for the row's own header). */
function rowBytes(p: PackedPrediction): number {
  return 64 + p.puid.length + p.modelVersion.length + p.packed.length;
}

/** Pause between looks for a row another replica has not written yet (ms). */
const LOOKUP_PAUSES_MS = [10, 20, 40, 60, 80];
/** Time a lookup's last query may take beyond lookupRetryMs (ms). */
const LOOKUP_QUERY_SLACK_MS = 300;
/** After failed flushes, wait this long (doubling per failure up to the maximum) before the next attempt; the buffer keeps filling, bounded. */
const FAILED_FLUSH_BACKOFF_MS = 50;
const FAILED_FLUSH_BACKOFF_MAX_MS = 1000;

export class SharedPredictionMemory {
  readonly stats: SharedPredictionStats = { written: 0, flushes: 0, flushFailures: 0, dropped: 0, hits: 0, misses: 0, lookupErrors: 0, expired: 0, evicted: 0 };
  /** Oldest first; `head` is the index of the oldest still buffered (a queue without O(n) shifts). */
  private buffer: SharedPredictionRow[] = [];
  private head = 0;
  private bufferedBytes = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private failingSince = 0;
  private failuresInARow = 0;
  private retryAfter = 0;
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly store: () => InteractionStore | null,
    readonly settings: SharedPredictionSettings,
    /** The prediction TTL (RECSERVE_PREDICTION_TTL_S): older rows are neither used nor kept. */
    private readonly ttlMs: number,
    private readonly log: Logger,
    private readonly observer: SharedPredictionObserver | null = null,
    private readonly now: () => number = Date.now,
  ) {
    this.sweepTimer = setInterval(() => void this.sweep(), settings.sweepMs);
    this.sweepTimer.unref();
  }

  /** Rows waiting to be written. */
  get pending(): number {
    return this.buffer.length - this.head;
  }

  /** The predict path's only cost: one append (and, when the buffer is full, dropping its oldest rows). */
  add(p: PackedPrediction): void {
    if (this.closed) return;
    const bytes = rowBytes(p);
    if (bytes > this.settings.bufferBytes) return this.drop(1);
    this.buffer.push({ puid: p.puid, modelVersion: p.modelVersion, packed: p.packed, bytes, createdAt: p.at });
    this.bufferedBytes += bytes;
    this.trimToBudget();
    this.compact();
    this.schedule(this.pending >= this.settings.batchRows ? 0 : this.settings.flushMs);
  }

  /** Drops the oldest buffered rows until the buffer fits its byte budget (counted as drops). */
  private trimToBudget(): void {
    let dropped = 0;
    while (this.bufferedBytes > this.settings.bufferBytes) {
      this.bufferedBytes -= this.buffer[this.head].bytes;
      this.head++;
      dropped++;
    }
    if (dropped > 0) this.drop(dropped);
  }

  /**
   * The row for `puid` (unexpired), looking again for up to lookupRetryMs while it is not there yet
   * or the store refused the read (e.g. all its connections busy). Never throws: past the window it is
   * a miss (the feedback then goes on as today; its own write reports an unavailable store).
   */
  async lookup(puid: string): Promise<PackedPrediction | null> {
    const started = this.now();
    // A slow or frozen store must not add its whole timeout to the feedback's own write deadline.
    const deadline = started + this.settings.lookupRetryMs + LOOKUP_QUERY_SLACK_MS;
    for (let attempt = 0; ; attempt++) {
      const store = this.store();
      if (!store?.getPrediction) return this.missed('miss');
      let row: SharedPredictionRow | null = null;
      let failure: Error | null = null;
      let timer: NodeJS.Timeout | undefined;
      try {
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${deadline - started} ms`)), Math.max(0, deadline - this.now()));
        });
        const query = store.getPrediction(puid, this.now() - this.ttlMs);
        query.catch(() => undefined); // abandoned after the deadline: its failure is nobody's
        row = await Promise.race([query, late]);
      } catch (e) {
        failure = e as Error;
      } finally {
        clearTimeout(timer);
      }
      if (row) {
        this.stats.hits++;
        this.observer?.lookup('hit');
        return { puid: row.puid, modelVersion: row.modelVersion, at: row.createdAt, packed: row.packed };
      }
      const pause = LOOKUP_PAUSES_MS[Math.min(attempt, LOOKUP_PAUSES_MS.length - 1)];
      if (this.now() - started + pause > this.settings.lookupRetryMs) {
        if (!failure) return this.missed('miss');
        this.log.warn({ err: failure.message, puid: puid.slice(0, 200) }, 'shared prediction memory: lookup failed; the feedback goes on without it');
        return this.missed('error');
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  /** Writes what is buffered (all of it, batch by batch); failures keep the rows, bounded by the buffer. */
  flush(): Promise<void> {
    this.flushing ??= this.writeAll().finally(() => {
      this.flushing = null;
      if (this.pending > 0 && !this.closed) this.schedule(Math.max(this.settings.flushMs, this.retryAfter - this.now()));
    });
    return this.flushing;
  }

  /** Deletes expired rows and the oldest beyond the table's byte cap (one replica at a time does it). */
  async sweep(): Promise<void> {
    const store = this.store();
    if (!store?.expirePredictions || this.closed) return;
    try {
      const r = await store.expirePredictions(this.now() - this.ttlMs, this.settings.maxTableBytes);
      this.stats.expired += r.expired;
      this.stats.evicted += r.evicted;
      this.observer?.swept(r.expired, r.evicted);
      if (r.evicted > 0) this.log.info({ evicted: r.evicted, maxBytes: this.settings.maxTableBytes }, 'shared prediction memory over its byte cap: oldest rows deleted');
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'shared prediction memory: sweep failed; the next one retries');
    }
  }

  /** Stops the timers and writes what is buffered (best effort, within the store's own deadline). */
  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.closed) return;
    this.closed = true; // no new rows, no rescheduling: this flush is the last
    await this.flush().catch(() => undefined);
  }

  private async writeAll(): Promise<void> {
    while (this.pending > 0) {
      const store = this.store();
      if (!store?.putPredictions) return this.failed(new Error('the interaction store is not open'));
      const batch = this.buffer.slice(this.head, this.head + this.settings.batchRows);
      this.head += batch.length;
      const bytes = batch.reduce((s, r) => s + r.bytes, 0);
      this.bufferedBytes -= bytes;
      this.compact();
      try {
        await store.putPredictions(batch);
      } catch (e) {
        // Back to the front (they are the oldest): the next predictions push them out first if the store stays down.
        this.buffer.splice(this.head, 0, ...batch);
        this.bufferedBytes += bytes;
        this.trimToBudget();
        return this.failed(e as Error);
      }
      this.stats.written += batch.length;
      this.stats.flushes++;
      this.observer?.written(batch.length);
      this.observer?.flushed(true);
      this.observer?.buffered(this.bufferedBytes);
      this.failuresInARow = 0;
      if (this.failingSince) {
        this.log.info({ failedFor_ms: this.now() - this.failingSince, dropped: this.stats.dropped }, 'shared prediction memory: writes succeed again');
        this.failingSince = 0;
      }
    }
  }

  private failed(e: Error): void {
    this.stats.flushFailures++;
    this.observer?.flushed(false);
    this.observer?.buffered(this.bufferedBytes);
    this.failuresInARow++;
    this.retryAfter = this.now() + Math.min(FAILED_FLUSH_BACKOFF_MAX_MS, FAILED_FLUSH_BACKOFF_MS * 2 ** (this.failuresInARow - 1));
    // Once per burst: the first failure after a success; "writes succeed again" closes the burst.
    if (!this.failingSince) {
      this.failingSince = this.now();
      this.log.warn(
        { err: e.message, buffered: this.pending, bufferBytes: this.settings.bufferBytes },
        'shared prediction memory: writes failing; predictions keep answering, feedback for them by puid works only on this replica until the store is back (oldest buffered rows are dropped when the buffer is full)',
      );
    }
  }

  private drop(rows: number): void {
    this.stats.dropped += rows;
    this.observer?.dropped(rows);
  }

  private missed(result: 'miss' | 'error'): null {
    if (result === 'miss') this.stats.misses++;
    else this.stats.lookupErrors++;
    this.observer?.lookup(result);
    return null;
  }

  /** Reclaims the consumed front of the queue once it is most of the array. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.buffer.length) {
      this.buffer = this.buffer.slice(this.head);
      this.head = 0;
    }
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.flushing) return; // a running flush reschedules itself when it ends
    if (this.flushTimer && delayMs > 0) return;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      void this.flush();
    }, Math.max(0, delayMs, this.retryAfter - this.now()));
    this.flushTimer.unref();
  }
}
