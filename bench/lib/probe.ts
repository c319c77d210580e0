// Probes liveness and metrics while a load runs, to show they stay fast when predict is saturated.
import http from 'node:http';

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
  const get = (url: string) =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = http.get(url, { agent, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ms.push(performance.now() - t0);
          else failures++;
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        failures++;
        resolve();
      });
    });
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
