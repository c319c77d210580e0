// Catalog CSV files of both readers (the model directory's items.csv and training's item catalog) go through one
// CSV library: quoted fields may hold commas, "" quotes and line breaks; the line a bad record ends on is named.
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadArtifact } from '../src/model-format/artifact.js';
import { readCatalog } from '../src/train/data.js';

const dir = () => mkdtempSync(path.join(os.tmpdir(), 'recserve-csv-'));

describe('training catalog (readCatalog)', () => {
  it('keeps a quoted line break, comma and quote inside one field, with CRLF lines and a BOM', async () => {
    const file = path.join(dir(), 'products.csv');
    writeFileSync(file, '\ufeffsku,name,blurb\r\nA1,Mug,"Holds tea,\r\ncoffee and ""soup"""\r\n\r\nB2,Pen,writes\r\n');
    const c = await readCatalog(file, { idColumn: 'sku' });
    expect(c.rows.get('A1')).toEqual({ name: 'Mug', blurb: 'Holds tea,\r\ncoffee and "soup"' });
    expect(c.rows.get('B2')).toEqual({ name: 'Pen', blurb: 'writes' });
    expect(c.fields).toEqual(['name', 'blurb']);
  });

  it('a quoted line break in movies.csv does not split the movie', async () => {
    const file = path.join(dir(), 'movies.csv');
    writeFileSync(file, 'movieId,title,genres\n7,"Two\nLines (1999)",Drama|War\n8,Next (2000),Comedy\n');
    const c = await readCatalog(file);
    expect(c.rows.get('7')).toEqual({ title: 'Two\nLines (1999)', genre: ['Drama', 'War'], year: 1999 });
    expect(c.rows.get('8')!.title).toBe('Next (2000)');
  });

  it('sniffs a multi-character delimiter and names the file on an unterminated quote', async () => {
    const d = dir();
    const sniffed = path.join(d, 'items.dat');
    writeFileSync(sniffed, 'id::name\n1::"a::b"\n');
    expect((await readCatalog(sniffed)).rows.get('1')).toEqual({ name: 'a::b' });
    const open = path.join(d, 'open.csv');
    writeFileSync(open, 'id,name\n1,"never closed\n2,x\n');
    await expect(readCatalog(open)).rejects.toThrow(`${open}: Quote Not Closed`);
  });
});

describe('model directory sidecar (items.csv)', () => {
  it('reads a catalog field with a quoted line break as one item', async () => {
    const d = dir();
    copyFileSync(path.resolve(import.meta.dirname, 'fixtures/torch/edb_pair/model.onnx'), path.join(d, 'model.onnx'));
    const items = Array.from({ length: 20 }, (_, i) => (i === 4 ? `m4,"first line\nsecond, line"` : `m${i},plain ${i}`));
    writeFileSync(path.join(d, 'items.csv'), 'item_id,title\n' + items.join('\n') + '\n');
    const a = await loadArtifact(d);
    expect(a.itemIds).toHaveLength(20);
    expect(a.itemIds[5]).toBe('m5');
    expect(a.catalog?.[4]).toEqual({ title: 'first line\nsecond, line' });
  });

  it('names the line of a record with the wrong number of cells', async () => {
    const d = dir();
    copyFileSync(path.resolve(import.meta.dirname, 'fixtures/torch/edb_pair/model.onnx'), path.join(d, 'model.onnx'));
    const file = path.join(d, 'items.csv');
    writeFileSync(file, 'item_id,title\nm0,"two\nlines"\nm1\n');
    await expect(loadArtifact(d)).rejects.toThrow(`${file} line 4: 1 cells, header has 2`);
  });
});
