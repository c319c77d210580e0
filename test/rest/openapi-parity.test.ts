// openapi.yaml and the express app describe the same API: every documented route answers (not 404 or
// 405) and the app serves nothing undocumented but the Swagger UI itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openapi } from '../../src/protocols/contract.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ RECSERVE_ADMIN_TOKEN: 'parity-token' });
});
afterAll(async () => t?.stop());

const documented = () =>
  Object.entries(openapi().doc.paths).flatMap(([path, item]) =>
    ['get', 'post', 'put', 'delete', 'patch'].filter((m) => m in item).map((m) => [m.toUpperCase(), path] as const),
  );

describe('openapi.yaml ⇄ express routes', () => {
  it('every documented operation is served', async () => {
    expect(documented().length).toBeGreaterThan(20);
    for (const [method, path] of documented()) {
      const res = await fetch(t.url + path.replace(/\{[^}]+\}/g, 'x'), {
        method,
        headers: { 'content-type': 'application/json', authorization: 'Bearer parity-token' },
        body: method === 'GET' ? undefined : '{}',
      });
      const body = await res.text();
      // A handler may answer 404 for a missing resource; only the router's own 404 means "no route".
      expect(res.status === 404 && body.includes('no route'), `${method} ${path}: ${body}`).toBe(false);
      expect(res.status, `${method} ${path}`).not.toBe(405);
    }
  });

  it('the app serves only documented paths (and /docs)', async () => {
    const res = await fetch(`${t.url}/docs/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/swagger-ui/);
    for (const path of ['/api/v1.0/status/model', '/api/v1.0/doc', '/v2/models/x/generate']) {
      expect((await fetch(t.url + path)).status).toBe(404);
    }
  });

  it('every documented operation has a unique operationId and a summary', () => {
    const ids = Object.values(openapi().doc.paths).flatMap((item) =>
      Object.values(item as Record<string, { operationId?: string; summary?: string }>).map((op) => {
        expect(op.summary, `${op.operationId} lacks a summary`).toBeTruthy();
        return op.operationId;
      }),
    );
    expect(new Set(ids).size).toBe(ids.length);
  });
});
