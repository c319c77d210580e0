// The gRPC port against the red-team's findings, over real sockets: health names that are huge or
// unknown (no echo, no per-name state), a cap on Watch streams, the connection cap, silent sockets and
// idle HTTP/2 sessions closed, and health following a drain.
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { startGrpcServer, type GrpcConnectionSettings, type RunningGrpcServer } from '../../src/transport/grpc/server.js';
import { call, healthClient, tryCall } from '../helpers/grpc-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let ts: TestServer;
let srv: RunningGrpcServer;
let address: string;

/** A gRPC server on its own port sharing the test server's data plane. */
function grpcServerWith(limits: Partial<Config['limits']> = {}, connections: Partial<GrpcConnectionSettings> = {}) {
  const config = { ...ts.server.config, grpcPort: 0, limits: { ...ts.server.config.limits, ...limits } };
  return startGrpcServer({ config, dataplane: ts.server.dataplane, metrics: ts.server.metrics, log: ts.server.log }, { connections });
}

beforeAll(async () => {
  ts = await startTestServer();
  srv = await grpcServerWith();
  address = `127.0.0.1:${srv.port}`;
});

afterAll(async () => {
  await srv?.close(1000);
  await ts?.stop();
});

// ---- hand-encoded messages, so a name can be any size -------------------------------------------

function varint(n: number): Buffer {
  const b: number[] = [];
  for (; n > 127; n = Math.floor(n / 128)) b.push((n & 127) | 128);
  b.push(n);
  return Buffer.from(b);
}
const stringField = (field: number, s: string) => {
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
};
const healthRequest = (service: string) => stringField(1, service);
/** SeldonMessage{strData: "1"}: a one-user predict. */
const PREDICT = stringField(5, '1');

const identity = (b: Buffer) => b;
type Raw = { ok: true; bytes: Buffer } | { ok: false; code: number; codeName: string; details: string };

function unaryRaw(client: grpc.Client, path: string, bytes: Buffer, deadlineMs = 5000): Promise<Raw> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, identity, identity, bytes, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) =>
      resolve(err ? { ok: false, code: err.code, codeName: grpc.status[err.code], details: err.details } : { ok: true, bytes: res! }),
    );
  });
}

/** Opens a Watch, waits for its first message, cancels it and waits until the call is over. */
function watchOnce(client: grpc.Client, service: string): Promise<{ first?: Buffer; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const stream = client.makeServerStreamRequest('/grpc.health.v1.Health/Watch', identity, identity, healthRequest(service), new grpc.Metadata(), {});
    let first: Buffer | undefined;
    stream.on('data', (d: Buffer) => {
      first ??= d;
      stream.cancel();
    });
    stream.on('error', (e: grpc.ServiceError) => resolve({ first, error: e.code === grpc.status.CANCELLED ? undefined : e }));
    stream.on('end', () => resolve({ first }));
  });
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const SERVICE_UNKNOWN = Buffer.from([0x08, 3]);
const SERVING = Buffer.from([0x08, 1]);
const NOT_SERVING = Buffer.from([0x08, 2]);

function rawClient(addr = address) {
  return new grpc.Client(addr, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
}

describe('health names a client controls', () => {
  it('a 1 MB name is refused short, and the same channel keeps serving', async () => {
    const client = rawClient();
    try {
      for (const size of [1 << 20, 100 * 1024, 20 * 1024]) {
        const r = await unaryRaw(client, '/grpc.health.v1.Health/Check', healthRequest('x'.repeat(size)));
        expect(r).toMatchObject({ ok: false, codeName: 'INVALID_ARGUMENT' });
        if (!r.ok) {
          expect(r.details).toMatch(/longer than 256 characters \(limit RECSERVE_MAX_ID_LENGTH=256\)/);
          expect(r.details.length).toBeLessThan(200);
        }
      }
      const results = await Promise.all(Array.from({ length: 10 }, () => unaryRaw(client, '/seldon.protos.Model/Predict', PREDICT)));
      expect(results.filter((r) => !r.ok)).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('an unknown name within the limit is NOT_FOUND quoting at most 64 characters of it', async () => {
    const h = healthClient(address);
    try {
      const name = 'unknown.Service' + 'y'.repeat(240);
      const r = await tryCall(h, 'Check', { service: name });
      expect(r).toMatchObject({ ok: false, codeName: 'NOT_FOUND' });
      expect(r.ok || r.details).toBe(`unknown service ${JSON.stringify(name.slice(0, 64) + '…')}`);
      // The limit is in characters: 256 two-byte characters are still a name (NOT_FOUND), 257 are not.
      expect(await tryCall(h, 'Check', { service: 'é'.repeat(256) })).toMatchObject({ ok: false, codeName: 'NOT_FOUND' });
      expect(await tryCall(h, 'Check', { service: 'é'.repeat(257) })).toMatchObject({ ok: false, codeName: 'INVALID_ARGUMENT' });
    } finally {
      h.close();
    }
  });

  it('known names answer their status; List shows exactly the known names', async () => {
    const h = healthClient(address);
    try {
      for (const name of srv.healthServices) expect(await call(h, 'Check', { service: name })).toEqual({ status: 'SERVING' });
      const list = await call(h, 'List', {});
      expect(Object.keys(list.statuses).sort()).toEqual([...srv.healthServices].sort());
      expect(Object.values(list.statuses).every((s: any) => s.status === 'SERVING')).toBe(true);
    } finally {
      h.close();
    }
  });

  it('a malformed request is INVALID_ARGUMENT, not INTERNAL', async () => {
    const client = rawClient();
    try {
      for (const bytes of [Buffer.from([0x0a, 0x80]), Buffer.from([0x0a, 50, 1, 2]), Buffer.from([0x0f]), Buffer.from([0x00])]) {
        expect(await unaryRaw(client, '/grpc.health.v1.Health/Check', bytes)).toMatchObject({ ok: false, codeName: 'INVALID_ARGUMENT', details: 'malformed HealthCheckRequest' });
      }
      // Unknown fields are skipped, as proto3 does.
      const withExtra = Buffer.concat([Buffer.from([0x10, 0x05]), healthRequest(''), Buffer.from([0x1d, 1, 2, 3, 4])]);
      const ok = await unaryRaw(client, '/grpc.health.v1.Health/Check', withExtra);
      expect(ok.ok && ok.bytes).toEqual(SERVING);
    } finally {
      client.close();
    }
  });
});

describe('health Watch', () => {
  it('300 cancelled Watches of distinct unknown names leave nothing behind', async () => {
    const client = rawClient();
    try {
      const before = srv.health.stats();
      expect(before.keyedNames).toBe(srv.healthServices.length);
      for (let i = 0; i < 300; i++) {
        const r = await watchOnce(client, `${String(i).padStart(6, '0')}.${'z'.repeat(240)}`);
        expect(r.error).toBeUndefined();
        expect(r.first).toEqual(SERVICE_UNKNOWN);
      }
      await waitFor(() => srv.health.stats().openWatches === 0);
      expect(srv.health.stats()).toEqual({ keyedNames: srv.healthServices.length, openWatches: 0, unknownWatches: 0 });
      // A 1 MB name is refused before anything is looked up or held.
      const huge = await watchOnce(client, 'w'.repeat(1 << 20));
      expect(huge.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(huge.error?.details.length).toBeLessThan(200);
      expect(srv.health.stats().openWatches).toBe(0);
    } finally {
      client.close();
    }
  });

  it('an unknown name gets SERVICE_UNKNOWN and its stream stays open until the client cancels', async () => {
    const client = rawClient();
    try {
      const stream = client.makeServerStreamRequest('/grpc.health.v1.Health/Watch', identity, identity, healthRequest('nope.Nope'), new grpc.Metadata(), {});
      const messages: Buffer[] = [];
      stream.on('data', (d: Buffer) => messages.push(d));
      stream.on('error', () => {});
      await waitFor(() => messages.length === 1);
      expect(messages).toEqual([SERVICE_UNKNOWN]);
      expect(srv.health.stats()).toMatchObject({ openWatches: 1, unknownWatches: 1, keyedNames: srv.healthServices.length });
      stream.cancel();
      await waitFor(() => srv.health.stats().openWatches === 0);
    } finally {
      client.close();
    }
  });

  it('open Watch streams are capped: past the cap RESOURCE_EXHAUSTED, and a cancelled one frees its place', async () => {
    const small = await grpcServerWith({}, { maxHealthWatches: 3 });
    const client = rawClient(`127.0.0.1:${small.port}`);
    const open = (service: string) => {
      const stream = client.makeServerStreamRequest('/grpc.health.v1.Health/Watch', identity, identity, healthRequest(service), new grpc.Metadata(), {});
      const seen: { messages: Buffer[]; error?: grpc.ServiceError } = { messages: [] };
      stream.on('data', (d: Buffer) => seen.messages.push(d));
      stream.on('error', (e: grpc.ServiceError) => (seen.error = e));
      return { stream, seen };
    };
    try {
      const watches = [open(''), open('seldon.protos.Model'), open('unknown')];
      await waitFor(() => watches.every((w) => w.seen.messages.length === 1));
      const fourth = open('');
      await waitFor(() => fourth.seen.error !== undefined);
      expect(fourth.seen.error!.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(fourth.seen.messages).toEqual([]);
      watches[2].stream.cancel();
      await waitFor(() => small.health.stats().openWatches === 2);
      const fifth = open('');
      await waitFor(() => fifth.seen.messages.length === 1);
      expect(fifth.seen.messages).toEqual([SERVING]);
    } finally {
      client.close();
      await small.close(1000);
    }
  });
});

describe('connections', () => {
  it('a connection past RECSERVE_MAX_CONNECTIONS is refused at accept; a freed place serves again', async () => {
    const small = await grpcServerWith({ maxConnections: 3 });
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const s = net.connect(small.port, '127.0.0.1');
        s.on('error', () => {});
        held.push(s);
      }
      await waitFor(() => small.connectionCount() === 3);
      const extra = rawClient(`127.0.0.1:${small.port}`);
      const refused = await unaryRaw(extra, '/seldon.protos.Model/Predict', PREDICT, 1500);
      extra.close();
      expect(refused).toMatchObject({ ok: false });
      expect(small.connectionCount()).toBe(3);
      held.pop()!.destroy();
      await waitFor(() => small.connectionCount() === 2);
      const client = rawClient(`127.0.0.1:${small.port}`);
      try {
        expect((await unaryRaw(client, '/seldon.protos.Model/Predict', PREDICT)).ok).toBe(true);
      } finally {
        client.close();
      }
    } finally {
      for (const s of held) s.destroy();
      await small.close(1000);
    }
  });

  it('a socket that never sends the HTTP/2 preface, or sends it and no call, is closed after the headers timeout; a client with calls is kept', async () => {
    // maxConnections 4: the client and the squatter make the port half full, so quiet connections are reclaimed.
    const small = await grpcServerWith({ headersTimeoutMs: 200, maxConnections: 4 });
    const silent = net.connect(small.port, '127.0.0.1');
    let silentClosed = false;
    silent.on('close', () => (silentClosed = true));
    silent.on('error', () => {});
    const client = rawClient(`127.0.0.1:${small.port}`);
    try {
      expect((await unaryRaw(client, '/seldon.protos.Model/Predict', PREDICT)).ok).toBe(true);
      await waitFor(() => silentClosed);
      // The preface and SETTINGS, then no call, on a port half full: closed (it would only hold a slot).
      const squatter = net.connect(small.port, '127.0.0.1', () => squatter.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])])));
      let squatterClosed = false;
      squatter.on('close', () => (squatterClosed = true));
      squatter.on('error', () => {});
      squatter.on('data', () => {}); // read the server's SETTINGS, or 'close' waits for them to be consumed
      await waitFor(() => squatterClosed);
      // Bytes that are not the HTTP/2 preface (an HTTP/1.1 request) are closed at once.
      const http1 = net.connect(small.port, '127.0.0.1', () => http1.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n'));
      let http1Closed = false;
      http1.on('close', () => (http1Closed = true));
      http1.on('error', () => {});
      await waitFor(() => http1Closed);
      // The real client's connection outlived the same timeout and still serves.
      expect(small.connectionCount()).toBe(1);
      expect((await unaryRaw(client, '/seldon.protos.Model/Predict', PREDICT)).ok).toBe(true);
    } finally {
      client.close();
      silent.destroy();
      await small.close(1000);
    }
  });

  it('an idle HTTP/2 connection is closed by the server, and the client reconnects on its next call', async () => {
    const small = await grpcServerWith({}, { idleMs: 300 });
    const client = rawClient(`127.0.0.1:${small.port}`);
    try {
      expect((await unaryRaw(client, '/seldon.protos.Model/Predict', PREDICT)).ok).toBe(true);
      expect(small.connectionCount()).toBe(1);
      await waitFor(() => small.connectionCount() === 0);
      expect((await unaryRaw(client, '/seldon.protos.Model/Predict', PREDICT)).ok).toBe(true);
    } finally {
      client.close();
      await small.close(1000);
    }
  });

  it('a close with silent sockets and open Watches finishes without waiting for its timeout', async () => {
    const small = await grpcServerWith({ headersTimeoutMs: 60_000 });
    const silent = net.connect(small.port, '127.0.0.1');
    silent.on('error', () => {});
    const client = rawClient(`127.0.0.1:${small.port}`);
    const stream = client.makeServerStreamRequest('/grpc.health.v1.Health/Watch', identity, identity, healthRequest(''), new grpc.Metadata(), {});
    const messages: Buffer[] = [];
    let ended = false;
    stream.on('data', (d: Buffer) => messages.push(d));
    stream.on('end', () => (ended = true));
    stream.on('error', () => (ended = true));
    try {
      await waitFor(() => messages.length === 1 && small.connectionCount() === 2);
      const closedInTime = await Promise.race([small.close(30_000).then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
      expect(closedInTime).toBe(true);
      await waitFor(() => ended);
      expect(messages).toEqual([SERVING, NOT_SERVING]);
    } finally {
      client.close();
      silent.destroy();
    }
  });
});

// Last: it starts the shared data plane's drain.
describe('drain', () => {
  it("a Watch on '' gets SERVING, then NOT_SERVING once the server starts draining", async () => {
    const client = rawClient();
    const stream = client.makeServerStreamRequest('/grpc.health.v1.Health/Watch', identity, identity, healthRequest(''), new grpc.Metadata(), {});
    const messages: Buffer[] = [];
    stream.on('data', (d: Buffer) => messages.push(d));
    stream.on('error', () => {});
    try {
      await waitFor(() => messages.length === 1);
      expect(messages).toEqual([SERVING]);
      ts.server.service.startDraining(); // the health poll notices it
      await waitFor(() => messages.length === 2);
      expect(messages).toEqual([SERVING, NOT_SERVING]);
    } finally {
      stream.cancel();
      client.close();
    }
  });
});
