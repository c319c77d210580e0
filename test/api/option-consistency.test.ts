// Options refused or honoured the same way wherever they arrive (round 2's N4), over real sockets on the
// demo model: weights without session items (similar_to too), recommendation options in the tags of
// tabular pair scoring (as jsonData pairs), and pins as openapi.yaml states them (unknown items ignored,
// an item pinned twice at its lower position, a shared position to the first listed).
import { describe, expect, it } from 'vitest';
import { postJson } from '../helpers/server.js';
import { ask, demoServer, everywhere, ok } from './transports.js';

const server = demoServer();

describe('weights', () => {
  it('are refused with similar_to as without items, on every transport', async () => {
    for (const options of [{ similar_to: '5', weights: [1], k: 3 }, { user_id: '1', weights: [1], k: 3 }]) {
      const a = await everywhere(server(), options);
      expect(a.ok).toBe(false);
      if (!a.ok) expect(a.kind).toBe('bad_data');
      const v1 = await ask(server(), 'v1 REST', options);
      expect(v1.ok ? '' : v1.message).toMatch(/weights are the weights of session items; send them with items/);
    }
  });
});

describe('tabular pair scoring', () => {
  it('refuses recommendation options in meta.tags, as jsonData pairs do', async () => {
    const table = { data: { names: ['user_id', 'item_id'], ndarray: [['1', '5']] } };
    for (const tags of [{ offset: 2 }, { pins: [{ item_id: '3', position: 1 }] }, { exclude_items: ['5'] }]) {
      const r = await postJson(`${server().ts.url}/api/v1.0/predictions`, { ...table, meta: { tags } });
      expect(r.status, JSON.stringify(tags)).toBe(400);
      expect(r.body.status.info).toMatch(/is a recommendation option; pair scoring takes none/);
    }
    const json = await postJson(`${server().ts.url}/api/v1.0/predictions`, { jsonData: { pairs: [['1', '5']], offset: 2 } });
    expect(json.status).toBe(400);
    const plain = await postJson(`${server().ts.url}/api/v1.0/predictions`, table);
    expect(plain.status).toBe(200);
  });
});

describe('pins as documented', () => {
  it('ignore an unknown item; an item pinned twice takes its lower position; a shared position goes to the first listed', async () => {
    const plain = ok(await everywhere(server(), { user_id: '5', k: 10 })).lists[0].items;
    expect(ok(await everywhere(server(), { user_id: '5', k: 10, pins: [{ item_id: 'no-such-item', position: 1 }] })).lists[0].items).toEqual(plain);
    const twice = ok(await everywhere(server(), { user_id: '5', k: 10, pins: [{ item_id: '67', position: 6 }, { item_id: '67', position: 2 }] })).lists[0].items;
    expect(twice.indexOf('67')).toBe(1);
    expect(twice.filter((i) => i === '67')).toHaveLength(1);
    // Two items of the list itself (an item the user has seen would be left out by exclude_seen).
    const [a, b] = [plain[8], plain[7]];
    const shared = ok(await everywhere(server(), { user_id: '5', k: 10, pins: [{ item_id: a, position: 4 }, { item_id: b, position: 4 }] })).lists[0].items;
    expect(shared.slice(3, 5)).toEqual([a, b]);
  });
});
