import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alignCatalog, DataError, dedupe, IdMap, readCatalog, readInteractions, splitLine } from '../../src/train/data.js';
import { tempDir } from './helpers.js';

const dir = tempDir();
const file = (name: string, text: string | Buffer) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('interaction logs', () => {
  it('reads MovieLens u.data (tab separated, no header)', async () => {
    const p = file('u.data', '196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n');
    const d = await readInteractions(p);
    expect(d.users.length).toBe(3);
    expect(d.userIds.ids).toEqual(['196', '186']);
    expect(d.itemIds.ids).toEqual(['242', '302', '377']);
    expect(Array.from(d.users)).toEqual([0, 1, 0]);
    expect(Array.from(d.ratings)).toEqual([3, 3, 1]);
    expect(d.timestamps![2]).toBe(878887116);
    expect(d.explicit).toBe(true);
  });

  it('reads ratings.csv (header, half stars) and ratings.dat ("::")', async () => {
    const csv = await readInteractions(file('ratings.csv', 'userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,3,4.5,964981247\r\n'));
    expect(Array.from(csv.ratings)).toEqual([4, 4.5]);
    const dat = await readInteractions(file('ratings.dat', '1::1193::5::978300760\n1::661::3::978302109\n'));
    expect(dat.itemIds.ids).toEqual(['1193', '661']);
  });

  it('maps generic columns by name, with quotes and implicit events', async () => {
    const p = file('events.csv', 'ts,visitor,event,product\n1,"a,1",view,p1\n2,"a,1",purchase,p2\n3,b,click,p1\n');
    const d = await readInteractions(p, { columns: { user: 'visitor', item: 'product', event: 'event', timestamp: 'ts' }, eventWeights: { view: 1, click: 2, purchase: 5 } });
    expect(d.userIds.ids).toEqual(['a,1', 'b']);
    expect(Array.from(d.ratings)).toEqual([1, 5, 2]);
    expect(d.explicit).toBe(false);
  });

  it('treats a file without a rating column as implicit events of weight 1', async () => {
    const d = await readInteractions(file('clicks.csv', 'user_id,item_id\nx,y\nx,z\n'));
    expect(Array.from(d.ratings)).toEqual([1, 1]);
    expect(d.explicit).toBe(false);
  });

  it('shares id maps between files so indices agree', async () => {
    const userIds = new IdMap();
    const itemIds = new IdMap();
    const a = await readInteractions(file('u1.base', '1\t10\t5\t0\n2\t11\t3\t0\n'), { userIds, itemIds });
    const b = await readInteractions(file('u1.test', '2\t10\t4\t0\n3\t12\t1\t0\n'), { userIds, itemIds });
    expect(a.users[1]).toBe(b.users[0]);
    expect(b.items[0]).toBe(a.items[0]);
    expect(userIds.size).toBe(3);
  });

  it('names the file and line of a bad rating', async () => {
    const p = file('bad.data', '1\t2\t3\t4\n5\t6\tx\t8\n');
    await expect(readInteractions(p)).rejects.toThrow(`${p}:2: rating "x" is not a number`);
  });

  it('names the file and line of a short row, an empty id and an unknown event', async () => {
    const short = file('short.csv', 'user,item,rating\n1,2,3\n4,5\n');
    await expect(readInteractions(short)).rejects.toThrow(`${short}:3: expected at least 3 fields`);
    const empty = file('empty.csv', 'user,item,rating\n1,2,3\n,5,1\n');
    await expect(readInteractions(empty)).rejects.toThrow(`${empty}:3: empty user id`);
    const ev = file('ev.csv', 'user,item,event\n1,2,view\n1,3,wishlist\n');
    await expect(readInteractions(ev, { eventWeights: { view: 1 } })).rejects.toThrow(`${ev}:3: event "wishlist" has no weight (known: view)`);
    await expect(readInteractions(ev)).rejects.toThrow(/needs event weights/);
  });

  it('names a missing column', async () => {
    const p = file('cols.csv', 'who,what\n1,2\n');
    await expect(readInteractions(p, { columns: { user: 'customer', item: 'what' } })).rejects.toThrow(/no column "customer" for user \(columns: who, what\)/);
    await expect(readInteractions(p)).rejects.toThrow(DataError);
  });

  it('drops rows below --min-rating and merges repeats', async () => {
    const d = await readInteractions(file('dups.data', '1\t1\t5\t10\n1\t1\t2\t20\n1\t2\t1\t5\n'), { minRating: 2 });
    expect(d.users.length).toBe(2);
    const last = dedupe(d, 'last');
    expect(Array.from(last.ratings)).toEqual([2]); // the later timestamp wins
    const summed = dedupe(d, 'sum');
    expect(Array.from(summed.ratings)).toEqual([7]);
  });

  it('splits quoted fields', () => {
    expect(splitLine('1,"Cry, the Beloved Country (1995)",Drama', ',')).toEqual(['1', 'Cry, the Beloved Country (1995)', 'Drama']);
    expect(splitLine('a::b::"c""d"', '::')).toEqual(['a', 'b', 'c"d']);
    expect(() => splitLine('1,"open', ',')).toThrow(/unterminated/);
  });
});

describe('item catalogs', () => {
  it('reads u.item as latin-1 with genre names from the flag columns', async () => {
    const flags = (on: number[]) => Array.from({ length: 19 }, (_, j) => (on.includes(j) ? '1' : '0')).join('|');
    const text = Buffer.from(`1|Toy Story (1995)|01-Jan-1995||http://x/1|${flags([3, 4, 5])}\n2|Misérables, Les (1995)|01-Jan-1995||http://x/2|${flags([8, 14])}\n`, 'latin1');
    const p = file('u.item', text);
    const c = await readCatalog(p);
    expect(c.rows.get('1')).toMatchObject({ title: 'Toy Story (1995)', year: 1995, genre: ['Animation', "Children's", 'Comedy'] });
    expect(c.rows.get('2')!.title).toBe('Misérables, Les (1995)');
    expect(c.rows.get('2')!.genre).toEqual(['Drama', 'Romance']);
    const aligned = alignCatalog(c, ['2', '1', '9']);
    expect(aligned.missing).toBe(1);
    expect(aligned.rows[2]).toEqual({});
  });

  it('reads movies.csv with quoted titles and genre lists', async () => {
    const p = file('movies.csv', 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n11,"American President, The (1995)",Comedy|Drama|Romance\n99,Nothing (2001),(no genres listed)\n');
    const c = await readCatalog(p);
    expect(c.rows.get('11')).toEqual({ title: 'American President, The (1995)', genre: ['Comedy', 'Drama', 'Romance'], year: 1995 });
    expect(c.rows.get('99')!.genre).toEqual([]);
  });

  it('reads a generic CSV catalog with list columns and reports bad rows by line', async () => {
    const p = file('products.csv', 'sku,name,price,tags\nA1,Mug,7.5,kitchen|gift\nB2,Pen,1,office\n');
    const c = await readCatalog(p, { idColumn: 'sku', listColumns: ['tags'] });
    expect(c.rows.get('A1')).toEqual({ name: 'Mug', price: 7.5, tags: ['kitchen', 'gift'] });
    const bad = file('bad-products.csv', 'sku,name\nA1,Mug\nB2\n');
    await expect(readCatalog(bad)).rejects.toThrow(`${bad}:3: 1 fields, the header has 2`);
  });
});
