// A feedback's shown lists and chosen items → interaction rows. Pure functions of core types, for
// every protocol: what a client claims about how a list was made is never read here.
import { badData, quote } from '../errors.js';
import type { ShownList } from '../core/types.js';
import type { NewInteraction, ServedBy } from './store/index.js';

/**
 * Keeps only catalog items (model.itemIdx known): the shown lists lose the others, and truth items that
 * are not in the catalog are dropped whether shown or not. Returns what was dropped, counted, so the
 * answer can say so. Nothing outside the catalog may become a bandit arm, an interaction or a retrained item.
 */
export function keepCatalogItems(lists: ShownList[], truth: string[] | null, inCatalog: (itemId: string) => boolean): { lists: ShownList[]; truth: string[] | null; ignored: number } {
  let ignored = 0;
  const keep = (items: string[]) => {
    const kept = items.filter(inCatalog);
    ignored += items.length - kept.length;
    return kept;
  };
  const kept = lists.map((l) => {
    const items = keep(l.items);
    return items.length === l.items.length ? l : { ...l, items };
  });
  return { lists: kept, truth: truth === null ? null : keep(truth), ignored };
}

/**
 * Interaction rows of one feedback. Without truth, the reward belongs to every shown item (`list`).
 * With truth, the named items get the reward (`chosen`) and the other shown items 0 (`skipped`); a
 * chosen item that was not shown is kept (`not_shown`) when the prediction had one user, and refused
 * when it had several (whose choice was it?). No rows (nothing shown, no truth) is a reward-only feedback.
 */
export function buildRows(lists: ShownList[], truth: string[] | null, reward: number): NewInteraction[] {
  const rows: NewInteraction[] = [];
  const servedBy = (l: ShownList, item: string): ServedBy =>
    l.explored?.has(item) ? 'exploration' : l.strategy === 'cold_start' ? 'cold_start' : l.strategy === 'pairs' ? 'pairs' : 'personalized';
  if (truth === null) {
    for (const l of lists) for (const item of new Set(l.items)) rows.push({ userId: l.userId, itemId: item, reward, kind: 'list', servedBy: servedBy(l, item) });
    return rows;
  }
  const chosen = new Set(truth);
  const placed = new Set<string>();
  for (const l of lists) {
    for (const item of new Set(l.items)) {
      const hit = chosen.has(item);
      if (hit) placed.add(item);
      rows.push({ userId: l.userId, itemId: item, reward: hit ? reward : 0, kind: hit ? 'chosen' : 'skipped', servedBy: servedBy(l, item) });
    }
  }
  const unplaced = [...chosen].filter((i) => !placed.has(i));
  if (unplaced.length > 0) {
    if (lists.length !== 1) {
      const named = unplaced.slice(0, 5).map((i) => quote(i)).join(', ');
      throw badData(`truth names ${named}${unplaced.length > 5 ? ` and ${unplaced.length - 5} more` : ''}, not shown to any of the ${lists.length} users of that prediction; send feedback per user`);
    }
    for (const item of unplaced) rows.push({ userId: lists[0].userId, itemId: item, reward, kind: 'chosen', servedBy: 'not_shown' });
  }
  return rows;
}
