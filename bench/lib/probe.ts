// Probes liveness and metrics while a load runs, to show they stay fast when predict is saturated.
import http from 'node:http';

/** Milliseconds until a 200 answer to GET url has been read, or null for any other outcome. */
function timedGet(agent: http.Agent, url: string, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.get(url, { agent, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? performance.now() - t0 : null));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(null));
  });
}

export interface ProbeStats {
  count: number;
  failures: number;
  p50Ms: number;
  maxMs: number;
}

/** GETs each url in turn every intervalMs (own keep-alive agent) until stopped. */
export function startProbes(urls: string[], intervalMs = 100): { stop(): Promise<ProbeStats> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const ms: number[] = [];
  let failures = 0;
  let running = true;
  const get = async (url: string) => {
    const t = await timedGet(agent, url, 10_000);
    if (t === null) failures++;
    else ms.push(t);
  };
  const loop = (async () => {
    for (let i = 0; running; i++) {
      await get(urls[i % urls.length]);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      agent.destroy();
      ms.sort((a, b) => a - b);
      return { count: ms.length, failures, p50Ms: ms[ms.length >> 1] ?? NaN, maxMs: ms[ms.length - 1] ?? NaN };
    },
  };
}

export interface PingStats {
  /** Pings answered 200. */
  count: number;
  failures: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /**
   * p99 counting the pings a probe every intervalMs would have sent while one was waiting (each late
   * answer of L ms stands for pings that waited L - interval, L - 2·interval, ...): a stalled event loop
   * shows in full instead of as one slow sample.
   */
  p99CorrectedMs: number;
  /** Answers slower than 50 ms (the p99 bound). */
  over50Ms: number;
}

/**
 * GETs url every intervalMs over one keep-alive connection of its own (one at a time: the next ping
 * leaves when the previous answered, or on schedule, whichever is later) until stopped.
 */
export function startPinger(url: string, intervalMs = 10): { stop(): Promise<PingStats> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const ms: number[] = [];
  let failures = 0;
  let running = true;
  const get = async () => {
    const t = await timedGet(agent, url, 30_000);
    if (t === null) failures++;
    else ms.push(t);
  };
  const loop = (async () => {
    const start = performance.now();
    for (let tick = 0; running; tick++) {
      const wait = start + tick * intervalMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else tick = Math.floor((performance.now() - start) / intervalMs); // skip the ticks a slow answer missed
      await get();
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      agent.destroy();
      const corrected: number[] = [];
      for (const m of ms) for (let v = m; v > 0; v -= intervalMs) corrected.push(v);
      ms.sort((a, b) => a - b);
      corrected.sort((a, b) => a - b);
      const q = (a: number[], p: number) => (a.length === 0 ? NaN : a[Math.min(a.length - 1, Math.ceil(p * a.length) - 1)]);
      return {
        count: ms.length,
        failures,
        p50Ms: q(ms, 0.5),
        p99Ms: q(ms, 0.99),
        maxMs: ms[ms.length - 1] ?? NaN,
        p99CorrectedMs: q(corrected, 0.99),
        over50Ms: ms.filter((m) => m > 50).length,
      };
    },
  };
}
