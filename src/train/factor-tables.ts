// Factor tables trained elsewhere — e.g. Spark MLlib ALS's userFactors / itemFactors DataFrames
// written as JSON lines ({"id": 12, "features": [0.1, …]}) or CSV (id,"[0.1, …]" or id,f1,f2,…),
// a single file or a directory of part-* files — read into the exporter's FactorModel.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { DataError, splitLine } from './data.js';

export interface FactorTable {
  ids: string[];
  factors: number;
  /** ids.length × factors, row-major. */
  values: Float32Array;
  /** Per-row bias when the table carries one (JSON field "bias" or a CSV "bias" column). */
  bias: Float32Array | null;
  source: string;
}

export type TableFormat = 'auto' | 'jsonl' | 'csv';

export interface TableOptions {
  format?: TableFormat;
  /** JSON field / CSV header name of the id (default "id"). */
  idField?: string;
  /** JSON field / CSV header name of the vector (default "features"). */
  featuresField?: string;
  biasField?: string;
}

/** The files a table path stands for: the file itself, or a directory's part-* / *.json / *.csv files in name order. */
export function tableFiles(p: string): string[] {
  if (!existsSync(p)) throw new DataError(`${p}: no such file or directory`);
  if (!statSync(p).isDirectory()) return [p];
  const files = readdirSync(p)
    .filter((f) => !f.startsWith('.') && !f.startsWith('_') && (f.startsWith('part-') || /\.(json|jsonl|csv|tsv|txt)$/i.test(f)))
    .sort()
    .map((f) => path.join(p, f));
  if (files.length === 0) throw new DataError(`${p}: directory holds no part-*, *.json or *.csv files`);
  return files;
}

function detect(file: string, first: string): 'jsonl' | 'csv' {
  if (/\.jsonl?$/i.test(file) || first.trimStart().startsWith('{')) return 'jsonl';
  return 'csv';
}

function parseVector(text: string, where: string): number[] {
  const t = text.trim();
  const inner = t.startsWith('[') && t.endsWith(']') ? t.slice(1, -1) : t;
  if (inner.trim() === '') return [];
  return inner.split(/[\s,;]+/).filter((s) => s !== '').map((s) => {
    const v = Number(s);
    if (!Number.isFinite(v)) throw new DataError(`${where}: ${JSON.stringify(s)} in the feature vector is not a number`);
    return v;
  });
}

export async function readFactorTable(p: string, opts: TableOptions = {}): Promise<FactorTable> {
  const idField = opts.idField ?? 'id';
  const featField = opts.featuresField ?? 'features';
  const biasField = opts.biasField ?? 'bias';
  const ids: string[] = [];
  const rows: number[][] = [];
  const biases: number[] = [];
  let hasBias: boolean | null = null;
  let d = -1;
  const seen = new Set<string>();
  for (const file of tableFiles(p)) {
    let lineNo = 0;
    let format: 'jsonl' | 'csv' | null = opts.format && opts.format !== 'auto' ? opts.format : null;
    let header: string[] | null = null;
    let delim = ',';
    let idCol = 0;
    let featCol = -1;
    let biasCol = -1;
    const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    for await (const raw of rl) {
      lineNo++;
      const line = raw.trim();
      if (line === '') continue;
      const where = `${file}:${lineNo}`;
      format ??= detect(file, line);
      let id: string;
      let vec: number[];
      let bias: number | undefined;
      if (format === 'jsonl') {
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(line) as Record<string, unknown>;
        } catch (e) {
          throw new DataError(`${where}: not a JSON object: ${(e as Error).message}`);
        }
        if (obj[idField] === undefined || obj[idField] === null) throw new DataError(`${where}: no "${idField}" field`);
        id = String(obj[idField]);
        const f = obj[featField];
        if (!Array.isArray(f)) throw new DataError(`${where}: "${featField}" is not an array`);
        vec = f.map((x) => {
          const v = Number(x);
          if (typeof x !== 'number' || !Number.isFinite(v)) throw new DataError(`${where}: "${featField}" holds ${JSON.stringify(x)}, not a number`);
          return v;
        });
        if (obj[biasField] !== undefined) {
          bias = Number(obj[biasField]);
          if (!Number.isFinite(bias)) throw new DataError(`${where}: "${biasField}" is not a number`);
        }
      } else {
        if (header === null) {
          delim = line.includes('\t') && !line.includes(',') ? '\t' : ',';
          const cells = splitLine(line, delim).map((c) => c.trim());
          header = [];
          // A header names its columns; a data row is an id followed by numbers or one "[…]" vector.
          const isHeader = cells.includes(idField) || cells.slice(1).some((c) => !c.startsWith('[') && !Number.isFinite(Number(c)));
          if (isHeader) {
            header = cells;
            idCol = Math.max(0, cells.indexOf(idField));
            featCol = cells.indexOf(featField);
            biasCol = cells.indexOf(biasField);
            continue;
          }
        }
        let cells: string[];
        try {
          cells = splitLine(line, delim);
        } catch (e) {
          throw new DataError(`${where}: ${(e as Error).message}`);
        }
        id = cells[idCol]?.trim() ?? '';
        if (featCol >= 0) vec = parseVector(cells[featCol] ?? '', where);
        else if (cells.length === 2 && cells[1].trim().startsWith('[')) vec = parseVector(cells[1], where);
        else vec = cells.filter((_, j) => j !== idCol && j !== biasCol).map((c) => {
          const v = Number(c.trim());
          if (c.trim() === '' || !Number.isFinite(v)) throw new DataError(`${where}: ${JSON.stringify(c)} is not a number`);
          return v;
        });
        if (biasCol >= 0) {
          bias = Number(cells[biasCol]);
          if (!Number.isFinite(bias)) throw new DataError(`${where}: bias ${JSON.stringify(cells[biasCol])} is not a number`);
        }
      }
      if (id === '') throw new DataError(`${where}: empty id`);
      if (seen.has(id)) throw new DataError(`${where}: id ${JSON.stringify(id)} appears twice`);
      seen.add(id);
      if (d < 0) d = vec.length;
      if (vec.length !== d || d === 0) throw new DataError(`${where}: ${vec.length} factors, earlier rows have ${d}`);
      const b = bias !== undefined;
      if (hasBias === null) hasBias = b;
      else if (hasBias !== b) throw new DataError(`${where}: some rows have a bias and some do not`);
      ids.push(id);
      rows.push(vec);
      if (b) biases.push(bias!);
    }
  }
  if (ids.length === 0) throw new DataError(`${p}: no factor rows`);
  const values = new Float32Array(ids.length * d);
  rows.forEach((r, j) => values.set(r, j * d));
  return { ids, factors: d, values, bias: hasBias ? Float32Array.from(biases) : null, source: p };
}

/** A table of id → one number (a bias): CSV "id,value" (optional header) or JSON lines {"id": …, "bias": …}. */
export async function readBiasTable(p: string, field = 'bias', idField = 'id'): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const file of tableFiles(p)) {
    let lineNo = 0;
    const rl = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    for await (const raw of rl) {
      lineNo++;
      const line = raw.trim();
      if (line === '') continue;
      const where = `${file}:${lineNo}`;
      let id: string;
      let v: number;
      if (line.startsWith('{')) {
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(line) as Record<string, unknown>;
        } catch (e) {
          throw new DataError(`${where}: not a JSON object: ${(e as Error).message}`);
        }
        id = String(obj[idField] ?? '');
        v = Number(obj[field]);
      } else {
        const cells = splitLine(line, line.includes('\t') && !line.includes(',') ? '\t' : ',').map((c) => c.trim());
        if (cells.length !== 2) throw new DataError(`${where}: expected "id,value", found ${cells.length} fields`);
        if (lineNo === 1 && !Number.isFinite(Number(cells[1]))) continue; // header
        id = cells[0];
        v = Number(cells[1]);
      }
      if (id === '') throw new DataError(`${where}: empty id`);
      if (!Number.isFinite(v)) throw new DataError(`${where}: ${field} is not a number`);
      out.set(id, v);
    }
  }
  return out;
}
