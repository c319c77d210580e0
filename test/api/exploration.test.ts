// Exploration slots (meta.tags.explore / V2 parameters.explore) against pins and the diversity cap, over
// real sockets on all four transports, against the demo model and its bandit explorer: pinned items keep
// their positions (exploration takes the last unpinned places) and drawn items respect max_per_value.
import { describe, expect, it } from 'vitest';
import { ask, demoServer, everywhere, ok } from './transports.js';

const demoServed = demoServer();

/** Which items of the v1 REST answer came from exploration slots. */
async function explored(options: Record<string, unknown>): Promise<boolean[]> {
  const a = ok(await ask(demoServed(), 'v1 REST', options));
  const list = a.raw.jsonData.recommendations?.[0] ?? a.raw.jsonData;
  return list.items.map((i: { exploration?: boolean }) => i.exploration === true);
}

describe('exploration slots', () => {
  it('never take a pinned place: they fill the last unpinned places of the page', async () => {
    const pins = [
      { item_id: '3', position: 5 },
      { item_id: '11', position: 4 },
    ];
    const plain = ok(await everywhere(demoServed(), { user_id: '2', k: 5, pins })).lists[0].items;
    expect(plain.slice(3)).toEqual(['11', '3']);
    const a = ok(await everywhere(demoServed(), { user_id: '2', k: 5, pins, explore: 2 }));
    const items = a.lists[0].items;
    expect(items[3]).toBe('11');
    expect(items[4]).toBe('3');
    expect(items[0]).toBe(plain[0]);
    expect(await explored({ user_id: '2', k: 5, pins, explore: 2 })).toEqual([false, true, true, false, false]);
    // Every place pinned: nothing to explore.
    const all = [1, 2, 3].map((position) => ({ item_id: plain[position - 1], position }));
    expect(ok(await everywhere(demoServed(), { user_id: '2', k: 3, pins: all, explore: 2 })).lists[0].items).toEqual(plain.slice(0, 3));
    expect(await explored({ user_id: '2', k: 3, pins: all, explore: 2 })).toEqual([false, false, false]);
  });

  it('draw only items within diversify max_per_value, the filter kept', async () => {
    const a = demoServed().artifact;
    const genreOf = (id: string) => a.catalog![a.itemIds.indexOf(id)].genre as string;
    let drawn = 0;
    for (const user of ['1', '2', '3', '4', '5', '6']) {
      for (const cap of [1, 2]) {
        const options = { user_id: user, k: 8, diversify: { field: 'genre', max_per_value: cap }, filter: { genre: { not: 'Drama' } }, explore: 3 };
        const items = ok(await everywhere(demoServed(), options)).lists[0].items;
        const genres = items.map(genreOf);
        expect(genres, `user ${user}`).not.toContain('Drama');
        const counts = new Map<string, number>();
        for (const g of genres) counts.set(g, (counts.get(g) ?? 0) + 1);
        for (const [g, n] of counts) expect(n, `user ${user}, cap ${cap}: ${g} in ${genres.join(', ')}`).toBeLessThanOrEqual(cap);
        drawn += (await explored(options)).filter(Boolean).length;
      }
    }
    expect(drawn, 'exploration items were drawn at all').toBeGreaterThan(0);
  });
});
