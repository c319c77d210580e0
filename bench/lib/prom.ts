// Reads the few server metrics the bench reports (batch sizes, worker busy time) from /prometheus.

export interface ServerCounters {
  /** Sum and count of recserve_batch_size{op="topk"}. */
  batchSum: number;
  batchCount: number;
  /** recserve_inference_worker_busy_seconds_total by worker. */
  workerBusy: Record<string, number>;
  queueSum: number;
  queueCount: number;
}

export async function scrape(metricsUrl: string): Promise<ServerCounters> {
  const text = await (await fetch(metricsUrl)).text();
  const out: ServerCounters = { batchSum: 0, batchCount: 0, workerBusy: {}, queueSum: 0, queueCount: 0 };
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('recserve_batch_size_sum') && line.includes('op="topk"')) out.batchSum += value;
    else if (line.startsWith('recserve_batch_size_count') && line.includes('op="topk"')) out.batchCount += value;
    else if (line.startsWith('recserve_batch_queue_seconds_sum') && line.includes('op="topk"')) out.queueSum += value;
    else if (line.startsWith('recserve_batch_queue_seconds_count') && line.includes('op="topk"')) out.queueCount += value;
    else if (line.startsWith('recserve_inference_worker_busy_seconds_total')) {
      const w = /worker="(\d+)"/.exec(line)?.[1];
      if (w !== undefined) out.workerBusy[w] = value;
    }
  }
  return out;
}

/** Mean batch size, mean queue ms and each worker's utilisation between two scrapes. */
export function between(a: ServerCounters, b: ServerCounters, seconds: number) {
  const batches = b.batchCount - a.batchCount;
  const queued = b.queueCount - a.queueCount;
  return {
    meanBatch: batches > 0 ? (b.batchSum - a.batchSum) / batches : NaN,
    meanQueueMs: queued > 0 ? ((b.queueSum - a.queueSum) / queued) * 1000 : NaN,
    workerUtil: Object.keys(b.workerBusy)
      .sort()
      .map((w) => ((b.workerBusy[w] ?? 0) - (a.workerBusy[w] ?? 0)) / seconds),
  };
}
