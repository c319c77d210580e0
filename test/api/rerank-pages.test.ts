// Pages over a reranked list (diversify, rules, pins) against the demo model over real sockets: the list
// is the rerank pool's whatever the page, so pages of any size concatenate to the k = 30 list, each item
// once, and a pinned item stands only at its position (round 2's N5: pins were applied over offset + k,
// so a pin past the page's end left the item at its natural rank there and again at its pin later).
import { describe, expect, it } from 'vitest';
import { rng } from '../../src/util/random.js';
import { ask, demoServer, ok, type Json, type List, type Transport } from './transports.js';

const server = demoServer();

const GENRES = ['Action', 'Comedy', 'Drama', 'Sci-Fi'];

/** A random reranked request: a query, then diversity, a rule, a filter, and two pins (distinct items and positions in 1..25). */
function reranked(rnd: () => number, t: number): { options: Json; pins: { item_id: string; position: number }[] } {
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const ids = (n: number) => Array.from({ length: n }, () => String(int(1, 120)));
  const queries: Json[] = [{ similar_to: ids(int(1, 3)) }, { items: ids(int(1, 4)) }, { user_id: String(int(1, 300)), items: ids(1) }, { users: [String(int(1, 300)), `pages-new-${t}`] }];
  const options: Json = { ...queries[int(0, queries.length - 1)] };
  const d = rnd();
  if (d < 0.3) options.diversify = { mmr_lambda: Math.round(rnd() * 100) / 100 };
  else if (d < 0.6) options.diversify = { field: 'genre', max_per_value: int(1, 2) };
  if (rnd() < 0.5) options.rules = [{ field: 'genre', value: GENRES[int(0, 3)], multiply: 2 }];
  if (rnd() < 0.3) options.filter = { year: { gte: 1985 } };
  const first = { item_id: String(int(1, 120)), position: int(1, 25) };
  let second = first;
  while (second.item_id === first.item_id || second.position === first.position) second = { item_id: String(int(1, 120)), position: int(1, 25) };
  const pins = [first, second];
  // Most requests pin (the case at issue); a few do not, so diversity and rules alone are paged too.
  if (rnd() < 0.85) options.pins = pins;
  return { options, pins: options.pins ? pins : [] };
}

async function lists(transport: Transport, options: Json): Promise<List[]> {
  return ok(await ask(server(), transport, options)).lists;
}

describe('pages of a reranked list', () => {
  it.each(['v1 REST', 'v1 gRPC'] as const)('concatenate to the k = 30 list on %s, each item once, a pinned item only at its position', async (transport) => {
    const rnd = rng(transport === 'v1 REST' ? 5 : 11);
    let pinnedSeen = 0;
    for (let t = 0; t < 30; t++) {
      const { options, pins } = reranked(rnd, t);
      const size = 7 + Math.floor(rnd() * 24); // 7 … 30
      const full = await lists(transport, { ...options, k: 30 });
      const pages: List[][] = [];
      for (let offset = 0; offset < 30; offset += size) pages.push(await lists(transport, { ...options, k: Math.min(size, 30 - offset), offset }));
      full.forEach((list, l) => {
        const what = `${JSON.stringify(options)} pages of ${size}, list ${l}`;
        const items = pages.flatMap((p) => p[l].items);
        const scores = pages.flatMap((p) => p[l].scores);
        expect(items, what).toEqual(list.items);
        expect(scores, what).toEqual(list.scores);
        expect(new Set(items).size, what).toBe(items.length);
        for (const pin of pins) {
          const at = list.items.indexOf(pin.item_id);
          const unpinned = list.items.filter((i) => !pins.some((p) => p.item_id === i)).length;
          // Excluded (a query or session item), or a short list (a cap ran out of values): pins close up after it.
          if (at < 0 || unpinned < pin.position - 1) continue;
          expect(at, `${what}: pin ${JSON.stringify(pin)}`).toBe(pin.position - 1);
          pinnedSeen++;
        }
      });
    }
    expect(pinnedSeen).toBeGreaterThan(10);
  }, 120_000);

  it('moves an item pinned past the page out of the page (the round-2 repro)', async () => {
    const pins = [{ item_id: '67', position: 20 }];
    const first = await lists('v1 REST', { user_id: '5', k: 7, pins });
    const later = await lists('v1 REST', { user_id: '5', k: 7, offset: 14, pins });
    expect(first[0].items).not.toContain('67');
    expect(later[0].items[5]).toBe('67');
  });
});
