// A client that pipelines many predict requests on one socket and never reads an answer, against the
// real server as a separate process: prints the server's RSS before, during and after. Without
// backpressure the server parses and runs every request and queues every answer (issue 9: 3 GB).
//
//   npm run build && node dist/bench/pipeline-flood.js [requests=10000] [--express] [--connections=1] [--users=1]
//
// By default plain JSON predicts (the fast path); --express sends the same message as a form field
// json= (the express app). Both are covered by the connection guard in server.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ensureDemoModel } from '../src/model-format/demo.js';
import { startServerProcess } from './lib/server-process.js';

const args = process.argv.slice(2);
const requests = Number(args.find((a) => /^\d+$/.test(a)) ?? 10_000);
const viaExpress = args.includes('--express');
const connections = Number(args.find((a) => a.startsWith('--connections='))?.split('=')[1] ?? 1);
// Users per request: a bigger answer per request makes every request the server runs ahead cost more.
const users = Number(args.find((a) => a.startsWith('--users='))?.split('=')[1] ?? 1);

const work = mkdtempSync(path.join(os.tmpdir(), 'recserve-flood-'));
const modelDir = await ensureDemoModel(path.join(work, 'model'));
const server = await startServerProcess({ modelDir, dataDir: path.join(work, 'data'), env: { LOG_LEVEL: 'warn' }, logFile: path.join(work, 'server.log') });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const message = JSON.stringify({ jsonData: users === 1 ? { user_id: 'flood-visitor', k: 120 } : { users: Array.from({ length: users }, (_, i) => String(i + 1)), k: 120 } });
const request = viaExpress
  ? (() => {
      const body = `json=${encodeURIComponent(message)}`;
      return `POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    })()
  : `POST /api/v1.0/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`;

await sleep(1000);
const before = server.rssMb();
console.log(`pipeline flood: ${requests} ${viaExpress ? 'express (form json=)' : 'fast-path (JSON)'} predicts of ${users} user(s) × k=120 × ${connections} connection(s), never read`);
console.log(`RSS before: ${before.toFixed(0)} MB`);

const sockets: net.Socket[] = [];
for (let c = 0; c < connections; c++) {
  const socket = net.connect(server.ports.http, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.pause(); // never read an answer
  sockets.push(socket);
  // Write everything at once; the kernel and the client's own buffer hold what the server doesn't read.
  socket.write(request.repeat(requests));
}

let peak = before;
for (let t = 1; t <= 15; t++) {
  await sleep(1000);
  const rss = server.rssMb();
  peak = Math.max(peak, rss);
  if (t % 3 === 0) console.log(`  t=${t}s RSS ${rss.toFixed(0)} MB`);
}
const ping = await fetch(`${server.base}/health/ping`).then((r) => r.status, (e: Error) => e.message);
console.log(`RSS peak: ${peak.toFixed(0)} MB (+${(peak - before).toFixed(0)} MB); /health/ping from another connection: ${ping}`);
for (const s of sockets) s.destroy();
await sleep(1000);
console.log(`RSS after the flood sockets closed: ${server.rssMb().toFixed(0)} MB`);
await server.stop();
rmSync(work, { recursive: true, force: true });
