// Why an item was recommended: the items of the user's history whose factors are closest to it, so a UI
// can say "because you liked …". O(history × factors) per item, the history capped by the caller.
import type { ItemSimilarity } from './similar.js';

/** Most history items one explanation names. */
export const EXPLAIN_ITEMS = 3;

/** What a cold-start (or exploration) item is explained with: no history made it. */
export const COLD_START_REASON = 'popular with recent visitors';

export interface BecauseItem {
  item: number;
  similarity: number;
}

/** Up to EXPLAIN_ITEMS history items most similar to `item` (itself left out), best first, ties by index. */
export function because(sim: ItemSimilarity, item: number, history: Int32Array): BecauseItem[] {
  const best: BecauseItem[] = [];
  for (const h of history) {
    if (h === item) continue;
    const s = sim.cosine(item, h);
    if (best.length === EXPLAIN_ITEMS && !(s > best[EXPLAIN_ITEMS - 1].similarity)) continue;
    let at = best.length;
    while (at > 0 && (best[at - 1].similarity < s || (best[at - 1].similarity === s && best[at - 1].item > h))) at--;
    best.splice(at, 0, { item: h, similarity: s });
    if (best.length > EXPLAIN_ITEMS) best.pop();
  }
  return best;
}
