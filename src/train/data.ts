// Interaction logs and item catalogs: streaming readers for MovieLens (u.data, *.base/*.test,
// ratings.dat, ratings.csv), generic delimited files with a column mapping, and item catalogs
// (u.item, movies.csv, generic CSV). A bad row fails with the file and line number in the message.
import { DomainError } from '../errors.js';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { readCsv } from '../util/csv.js';

export class DataError extends DomainError {
  constructor(message: string) {
    super('bad_data', message);
  }
}

/** External string id ⇄ dense index, in order of first appearance. */
export class IdMap {
  readonly ids: string[] = [];
  private readonly index = new Map<string, number>();

  static from(ids: Iterable<string>): IdMap {
    const m = new IdMap();
    for (const id of ids) m.intern(id);
    return m;
  }
  get size(): number {
    return this.ids.length;
  }
  intern(id: string): number {
    let i = this.index.get(id);
    if (i === undefined) {
      i = this.ids.length;
      this.index.set(id, i);
      this.ids.push(id);
    }
    return i;
  }
  get(id: string): number | undefined {
    return this.index.get(id);
  }
}

/**
 * Interaction rows in index space. `ratings` holds the explicit rating, or the event weight of an
 * implicit log (1 per event unless a weight column or event weights say otherwise).
 */
export interface Interactions {
  users: Int32Array;
  items: Int32Array;
  ratings: Float32Array;
  /** Unix seconds (or whatever the file holds), NaN where absent; null when the file has no time column. */
  timestamps: Float64Array | null;
  userIds: IdMap;
  itemIds: IdMap;
  /** True when the values are explicit ratings rather than event weights. */
  explicit: boolean;
  source: string;
}

export type LogFormat = 'auto' | 'movielens' | 'ml-dat' | 'ml-csv' | 'csv';

export interface ColumnMap {
  user?: string | number;
  item?: string | number;
  rating?: string | number;
  timestamp?: string | number;
  /** An event-type column (view, click, purchase…), weighted by `eventWeights`. */
  event?: string | number;
}

export interface ReadOptions {
  format?: LogFormat;
  /** Field separator for 'csv': ',', '\t', ';', '|', '::' or 'auto' (sniffed from the first line). */
  delimiter?: string;
  /** Whether the first line is a header ('auto': yes when the user/item cells are not all numeric… or named columns are asked for). */
  header?: boolean | 'auto';
  columns?: ColumnMap;
  /** Weight per event value, e.g. {view: 1, click: 2, purchase: 5}; unknown events fail the row. */
  eventWeights?: Record<string, number>;
  /** Drop rows whose rating is below this (after event weighting). */
  minRating?: number;
  encoding?: BufferEncoding;
  /** Share id maps with another file (e.g. u1.base and u1.test) so indices agree. */
  userIds?: IdMap;
  itemIds?: IdMap;
  /** Called every 100k rows with the number of rows read so far. */
  onRows?: (rows: number) => void;
  /** Called with each unreadable row, which is then skipped (default: the first one stops the read). */
  onBadRow?: (error: DataError) => void;
}

const USER_NAMES = ['user', 'user_id', 'userid', 'uid', 'customer', 'customer_id', 'visitorid', 'visitor_id'];
const ITEM_NAMES = ['item', 'item_id', 'itemid', 'iid', 'movie', 'movieid', 'movie_id', 'product', 'product_id', 'productid', 'sku'];
const RATING_NAMES = ['rating', 'ratings', 'score', 'value', 'weight', 'quantity', 'count', 'playcount', 'plays'];
const TIME_NAMES = ['timestamp', 'time', 'ts', 'date', 'datetime', 'event_time'];
const EVENT_NAMES = ['event', 'event_type', 'eventtype', 'action', 'type', 'interaction'];

/** Growable typed arrays for the reader, doubling capacity: no per-row allocation. */
class Columns {
  n = 0;
  users = new Int32Array(1024);
  items = new Int32Array(1024);
  ratings = new Float32Array(1024);
  times = new Float64Array(1024);
  push(u: number, i: number, r: number, t: number): void {
    if (this.n === this.users.length) {
      const cap = this.n * 2;
      this.users = grow(this.users, new Int32Array(cap));
      this.items = grow(this.items, new Int32Array(cap));
      this.ratings = grow(this.ratings, new Float32Array(cap));
      this.times = grow(this.times, new Float64Array(cap));
    }
    this.users[this.n] = u;
    this.items[this.n] = i;
    this.ratings[this.n] = r;
    this.times[this.n] = t;
    this.n++;
  }
}

function grow<T extends Int32Array | Float32Array | Float64Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Guesses the layout from the file name: u.data/*.base/*.test → movielens, ratings.dat → ml-dat, ratings.csv → ml-csv. */
export function detectFormat(file: string): Exclude<LogFormat, 'auto'> {
  const base = path.basename(file).toLowerCase();
  if (base === 'u.data' || /^u[a-z0-9]*\.(base|test)$/.test(base)) return 'movielens';
  if (base.endsWith('.dat')) return 'ml-dat';
  if (base === 'ratings.csv') return 'ml-csv';
  return 'csv';
}

/** Splits one delimited line, honouring double quotes (RFC 4180 quoting, "" as an escaped quote). */
export function splitLine(line: string, delimiter: string): string[] {
  if (line.indexOf('"') < 0) return line.split(delimiter);
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  const dl = delimiter.length;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"') {
        if (line[i + 1] === '"') {
          cur += '"';
          i++;
        } else quoted = false;
      } else cur += ch;
    } else if (ch === '"' && cur.length === 0) quoted = true;
    else if (line.startsWith(delimiter, i)) {
      out.push(cur);
      cur = '';
      i += dl - 1;
    } else cur += ch;
  }
  if (quoted) throw new DataError('unterminated quoted field');
  out.push(cur);
  return out;
}

function sniffDelimiter(line: string): string {
  const candidates = ['\t', ',', ';', '|', '::'];
  let best = ',';
  let bestCount = 0;
  for (const d of candidates) {
    const c = line.split(d).length - 1;
    if (c > bestCount) (best = d), (bestCount = c);
  }
  return best;
}

/** The first line of a file (the header, to sniff the delimiter from). */
async function firstLine(file: string, encoding: BufferEncoding): Promise<string> {
  for await (const line of lines(file, encoding)) return line;
  return '';
}

async function* lines(file: string, encoding: BufferEncoding): AsyncGenerator<string> {
  if (!existsSync(file)) throw new DataError(`${file}: no such file`);
  const rl = createInterface({ input: createReadStream(file, { encoding }), crlfDelay: Infinity });
  for await (const line of rl) yield line;
}

function resolveColumn(spec: string | number | undefined, header: string[] | null, names: string[], what: string, file: string): number {
  if (spec === undefined) {
    if (!header) return -1;
    const lower = header.map((h) => h.trim().toLowerCase());
    for (const n of names) {
      const j = lower.indexOf(n);
      if (j >= 0) return j;
    }
    return -1;
  }
  if (typeof spec === 'number' || /^\d+$/.test(spec)) {
    const j = Number(spec);
    if (header && j >= header.length) throw new DataError(`${file}: ${what} column ${j} is beyond the ${header.length} columns of the header`);
    return j;
  }
  if (!header) throw new DataError(`${file}: ${what} column "${spec}" is named but the file has no header row (use a 0-based column number)`);
  const j = header.findIndex((h) => h.trim() === spec) >= 0 ? header.findIndex((h) => h.trim() === spec) : header.findIndex((h) => h.trim().toLowerCase() === spec.toLowerCase());
  if (j < 0) throw new DataError(`${file}: no column "${spec}" for ${what} (columns: ${header.join(', ')})`);
  return j;
}

/**
 * Streams an interaction log into typed arrays. MovieLens layouts need no options; a generic file
 * needs a header naming user and item columns (or explicit column numbers). Without a rating
 * column every row is an implicit event of weight 1 (or its event weight).
 */
export async function readInteractions(file: string, opts: ReadOptions = {}): Promise<Interactions> {
  const format = opts.format && opts.format !== 'auto' ? opts.format : detectFormat(file);
  const userIds = opts.userIds ?? new IdMap();
  const itemIds = opts.itemIds ?? new IdMap();
  const cols = new Columns();
  let delimiter = opts.delimiter && opts.delimiter !== 'auto' ? unescapeDelimiter(opts.delimiter) : '';
  let header: string[] | null = null;
  let cu = 0, ci = 1, cr = 2, ct = 3, ce = -1;
  let width = 0;
  let lineNo = 0;
  let configured = false;
  let hasRating = true;
  let hasTime = true;
  const minRating = opts.minRating ?? -Infinity;
  const weights = opts.eventWeights;
  const badRow = (what: string) => {
    const e = new DataError(`${file}:${lineNo}: ${what}`);
    if (!opts.onBadRow) throw e;
    opts.onBadRow(e);
  };

  const configure = (first: string): boolean => {
    // Returns true when `first` was a header line (consumed).
    if (format === 'movielens') {
      delimiter ||= '\t';
      width = 4;
      return false;
    }
    if (format === 'ml-dat') {
      delimiter ||= '::';
      width = 4;
      return false;
    }
    delimiter ||= sniffDelimiter(first);
    const cells = splitLine(first, delimiter);
    const named = Object.values(opts.columns ?? {}).some((v) => typeof v === 'string' && !/^\d+$/.test(v));
    let isHeader: boolean;
    if (opts.header === true || format === 'ml-csv') isHeader = true;
    else if (opts.header === false) isHeader = false;
    else isHeader = named || cells.some((c) => c.trim() !== '' && !Number.isFinite(Number(c))) && !looksLikeData(cells);
    header = isHeader ? cells.map((c) => c.trim()) : null;
    width = cells.length;
    const c = opts.columns ?? {};
    cu = resolveColumn(c.user, header, USER_NAMES, 'user', file);
    ci = resolveColumn(c.item, header, ITEM_NAMES, 'item', file);
    if (!header) {
      cu = cu < 0 ? 0 : cu;
      ci = ci < 0 ? 1 : ci;
    }
    if (cu < 0) throw new DataError(`${file}: cannot find a user column in the header (${header!.join(', ')}); name it with --user-col`);
    if (ci < 0) throw new DataError(`${file}: cannot find an item column in the header (${header!.join(', ')}); name it with --item-col`);
    ce = resolveColumn(c.event, header, header ? EVENT_NAMES : [], 'event', file);
    cr = resolveColumn(c.rating, header, RATING_NAMES, 'rating', file);
    ct = resolveColumn(c.timestamp, header, TIME_NAMES, 'timestamp', file);
    if (!header) {
      if (c.rating === undefined) cr = width > 2 && ce !== 2 ? 2 : -1;
      if (c.timestamp === undefined) ct = width > 3 && ce !== 3 ? 3 : -1;
    }
    if (ce >= 0 && !weights) throw new DataError(`${file}: event column "${header?.[ce] ?? ce}" needs event weights (e.g. --event-weights view=1,click=2,purchase=5)`);
    hasRating = cr >= 0;
    hasTime = ct >= 0;
    return isHeader;
  };

  for await (const raw of lines(file, opts.encoding ?? 'utf8')) {
    lineNo++;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!configured) {
      configured = true;
      if (line.charCodeAt(0) === 0xfeff) {
        if (configure(line.slice(1))) continue;
      } else if (configure(line)) continue;
    }
    if (line.length === 0 || line.trim().length === 0) continue;
    let cells: string[];
    try {
      cells = splitLine(line, delimiter);
    } catch (e) {
      badRow((e as Error).message);
      continue;
    }
    const need = Math.max(cu, ci, cr, ct, ce) + 1;
    if (cells.length < need) {
      badRow(`expected at least ${need} fields separated by ${JSON.stringify(delimiter)}, found ${cells.length}: ${clip(line)}`);
      continue;
    }
    const u = cells[cu].trim();
    const it = cells[ci].trim();
    if (u === '' || it === '') {
      badRow(`empty ${u === '' ? 'user' : 'item'} id: ${clip(line)}`);
      continue;
    }
    let r = 1;
    if (hasRating) {
      const s = cells[cr].trim();
      r = Number(s);
      if (s === '' || !Number.isFinite(r)) {
        badRow(`rating ${JSON.stringify(cells[cr])} is not a number: ${clip(line)}`);
        continue;
      }
    }
    if (ce >= 0) {
      const ev = cells[ce].trim();
      const w = weights![ev] ?? weights![ev.toLowerCase()];
      if (w === undefined) {
        badRow(`event "${ev}" has no weight (known: ${Object.keys(weights!).join(', ')})`);
        continue;
      }
      r = hasRating ? r * w : w;
    }
    if (r < minRating) continue;
    let t = NaN;
    if (hasTime) {
      const s = cells[ct].trim();
      t = s === '' ? NaN : Number(s);
      if (s !== '' && !Number.isFinite(t)) {
        const parsed = Date.parse(s);
        if (!Number.isFinite(parsed)) {
          badRow(`timestamp ${JSON.stringify(s)} is neither a number nor a date: ${clip(line)}`);
          continue;
        }
        t = parsed / 1000;
      }
    }
    cols.push(userIds.intern(u), itemIds.intern(it), r, t);
    if (opts.onRows && cols.n % 100_000 === 0) opts.onRows(cols.n);
  }
  if (cols.n === 0) throw new DataError(`${file}: no interactions found`);
  return {
    users: cols.users.slice(0, cols.n),
    items: cols.items.slice(0, cols.n),
    ratings: cols.ratings.slice(0, cols.n),
    timestamps: hasTime ? cols.times.slice(0, cols.n) : null,
    userIds,
    itemIds,
    explicit: hasRating && ce < 0,
    source: file,
  };
}

function looksLikeData(cells: string[]): boolean {
  // "u123,i456,1" has non-numeric ids but is data, not a header: headers rarely contain digits in every cell.
  return cells.length >= 2 && cells.every((c) => /\d/.test(c));
}

function unescapeDelimiter(d: string): string {
  if (d === '\\t' || d.toLowerCase() === 'tab') return '\t';
  if (d.toLowerCase() === 'comma') return ',';
  if (d.toLowerCase() === 'pipe') return '|';
  if (d.toLowerCase() === 'semicolon') return ';';
  return d;
}

function clip(s: string): string {
  return s.length > 120 ? `${JSON.stringify(s.slice(0, 117))}…` : JSON.stringify(s);
}

/** Rows selected by index (or by a 0/1 mask), sharing id maps with the source. */
export function subset(data: Interactions, rows: Int32Array | Uint8Array, keep = 1): Interactions {
  let idx: Int32Array;
  if (rows instanceof Uint8Array) {
    let n = 0;
    for (let r = 0; r < rows.length; r++) if (rows[r] === keep) n++;
    idx = new Int32Array(n);
    n = 0;
    for (let r = 0; r < rows.length; r++) if (rows[r] === keep) idx[n++] = r;
  } else idx = rows;
  const n = idx.length;
  const out: Interactions = {
    users: new Int32Array(n),
    items: new Int32Array(n),
    ratings: new Float32Array(n),
    timestamps: data.timestamps ? new Float64Array(n) : null,
    userIds: data.userIds,
    itemIds: data.itemIds,
    explicit: data.explicit,
    source: data.source,
  };
  for (let j = 0; j < n; j++) {
    const r = idx[j];
    out.users[j] = data.users[r];
    out.items[j] = data.items[r];
    out.ratings[j] = data.ratings[r];
    if (out.timestamps) out.timestamps[j] = data.timestamps![r];
  }
  return out;
}

export type Aggregate = 'last' | 'sum' | 'max' | 'mean';

/**
 * One value per (user, item): repeated events are summed (implicit logs), or the latest rating is
 * kept (explicit: by timestamp when present, otherwise by file order).
 */
export function dedupe(data: Interactions, how: Aggregate = data.explicit ? 'last' : 'sum'): Interactions {
  const n = data.users.length;
  const nItems = data.itemIds.size;
  const order = Int32Array.from({ length: n }, (_, r) => r);
  const key = (r: number) => data.users[r] * nItems + data.items[r];
  const ts = data.timestamps;
  order.sort((a, b) => key(a) - key(b) || (ts ? (ts[a] || 0) - (ts[b] || 0) : 0) || a - b);
  const keepRows: number[] = [];
  const values: number[] = [];
  for (let s = 0; s < n; ) {
    const k = key(order[s]);
    let e = s + 1;
    while (e < n && key(order[e]) === k) e++;
    let v: number;
    if (how === 'last') v = data.ratings[order[e - 1]];
    else {
      v = how === 'max' ? -Infinity : 0;
      for (let j = s; j < e; j++) {
        const x = data.ratings[order[j]];
        v = how === 'max' ? Math.max(v, x) : v + x;
      }
      if (how === 'mean') v /= e - s;
    }
    keepRows.push(order[e - 1]);
    values.push(v);
    s = e;
  }
  if (keepRows.length === n && how === 'last') return data;
  const out = subset(data, Int32Array.from(keepRows));
  out.ratings.set(values);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Item catalogs

export type CatalogFormat = 'auto' | 'u.item' | 'movies.csv' | 'csv';

export interface Catalog {
  /** Item id → catalog fields. */
  rows: Map<string, Record<string, unknown>>;
  fields: string[];
  source: string;
}

export interface CatalogOptions {
  format?: CatalogFormat;
  delimiter?: string;
  /** Generic CSV: the id column (name or 0-based number); default the first column. */
  idColumn?: string | number;
  /** Generic CSV: columns whose cells are lists, split on `listSeparator` (default '|'). */
  listColumns?: string[];
  listSeparator?: string;
  encoding?: BufferEncoding;
}

/** The 19 genre flags of ML-100k's u.item, in column order (u.genre lists the same names). */
export const ML100K_GENRES = [
  'unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy', 'Crime', 'Documentary', 'Drama', 'Fantasy',
  'Film-Noir', 'Horror', 'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western',
];

export function detectCatalogFormat(file: string): Exclude<CatalogFormat, 'auto'> {
  const base = path.basename(file).toLowerCase();
  if (base === 'u.item') return 'u.item';
  if (base === 'movies.csv') return 'movies.csv';
  return 'csv';
}

function yearOf(title: string): number | undefined {
  const m = /\((\d{4})\)\s*$/.exec(title.trim());
  return m ? Number(m[1]) : undefined;
}

/**
 * Reads item metadata. u.item (latin-1, '|'): title, year, release_date, imdb_url and `genre` as
 * the list of flagged genre names (names from u.genre beside it when present). movies.csv: title,
 * year, `genre` list. Generic CSV: a header row; the id column plus every other column as a field.
 */
export async function readCatalog(file: string, opts: CatalogOptions = {}): Promise<Catalog> {
  const format = opts.format && opts.format !== 'auto' ? opts.format : detectCatalogFormat(file);
  const rows = new Map<string, Record<string, unknown>>();
  if (format === 'u.item') {
    let lineNo = 0;
    const genreFile = path.join(path.dirname(file), 'u.genre');
    let genres = ML100K_GENRES;
    if (existsSync(genreFile)) {
      const g: string[] = [];
      for (const l of readFileSync(genreFile, 'latin1').split(/\r?\n/)) {
        const [name, idx] = l.split('|');
        if (name && idx !== undefined && /^\d+$/.test(idx)) g[Number(idx)] = name;
      }
      if (g.length > 0) genres = g;
    }
    for await (const line of lines(file, opts.encoding ?? 'latin1')) {
      lineNo++;
      if (line.trim() === '') continue;
      const c = line.split('|');
      if (c.length < 5 + genres.length) {
        throw new DataError(`${file}:${lineNo}: expected ${5 + genres.length} '|'-separated fields (id|title|release|video release|url|${genres.length} genre flags), found ${c.length}`);
      }
      const flags = c.slice(5, 5 + genres.length);
      const genre: string[] = [];
      flags.forEach((f, j) => {
        if (f !== '0' && f !== '1') throw new DataError(`${file}:${lineNo}: genre flag ${j + 1} is ${JSON.stringify(f)}, expected 0 or 1`);
        if (f === '1') genre.push(genres[j]);
      });
      const row: Record<string, unknown> = { title: c[1] };
      const year = yearOf(c[1]) ?? (/\d{4}$/.test(c[2]) ? Number(c[2].slice(-4)) : undefined);
      if (year !== undefined) row.year = year;
      row.genre = genre;
      if (c[2]) row.release_date = c[2];
      if (c[4]) row.imdb_url = c[4];
      rows.set(c[0].trim(), row);
    }
    return { rows, fields: ['title', 'year', 'genre', 'release_date', 'imdb_url'], source: file };
  }

  const encoding = opts.encoding ?? 'utf8';
  let d = format === 'movies.csv' ? ',' : opts.delimiter && opts.delimiter !== 'auto' ? unescapeDelimiter(opts.delimiter) : '';
  d ||= sniffDelimiter((await firstLine(file, encoding)).replace(/^\uFEFF/, ''));
  let header: string[] | null = null;
  let idCol = 0;
  const listSep = opts.listSeparator ?? '|';
  const listCols = new Set(opts.listColumns ?? []);
  for await (const { cells, line: lineNo } of readCsv(file, { delimiter: d, encoding, fail: (message) => new DataError(message) })) {
    if (!header) {
      header = cells.map((h) => h.trim());
      if (format === 'movies.csv') {
        idCol = header.indexOf('movieId');
        if (idCol < 0 || !header.includes('title')) throw new DataError(`${file}:1: expected a movies.csv header with movieId and title, found ${header.join(',')}`);
        if (header.includes('genres')) listCols.add('genres');
      } else if (opts.idColumn !== undefined) {
        idCol = resolveColumn(opts.idColumn, header, [], 'item id', file);
      } else {
        const lower = header.map((h) => h.toLowerCase());
        idCol = Math.max(0, ITEM_NAMES.map((n) => lower.indexOf(n)).find((j) => j >= 0) ?? 0);
      }
      for (const lc of listCols) if (!header.includes(lc)) throw new DataError(`${file}: list column "${lc}" is not in the header (${header.join(', ')})`);
      continue;
    }
    if (cells.length !== header.length) {
      throw new DataError(`${file}:${lineNo}: ${cells.length} fields, the header has ${header.length}: ${clip(cells.join(d))}`);
    }
    const id = cells[idCol].trim();
    if (id === '') throw new DataError(`${file}:${lineNo}: empty item id`);
    const row: Record<string, unknown> = {};
    for (let j = 0; j < header.length; j++) {
      if (j === idCol) continue;
      const name = format === 'movies.csv' && header[j] === 'genres' ? 'genre' : header[j];
      const v = cells[j];
      if (listCols.has(header[j])) {
        row[name] = v === '' || v === '(no genres listed)' ? [] : v.split(listSep).map((s) => s.trim());
      } else if (v !== '' && /^-?\d+(\.\d+)?$/.test(v.trim())) row[name] = Number(v);
      else row[name] = v;
    }
    if (format === 'movies.csv' && typeof row.title === 'string') {
      const y = yearOf(row.title);
      if (y !== undefined) row.year = y;
    }
    rows.set(id, row);
  }
  if (!header) throw new DataError(`${file}: empty catalog`);
  const fields = header.filter((_, j) => j !== idCol).map((h) => (format === 'movies.csv' && h === 'genres' ? 'genre' : h));
  if (format === 'movies.csv') fields.push('year');
  return { rows, fields, source: file };
}

/** Catalog rows aligned to the model's item order; items missing from the catalog get {}. */
export function alignCatalog(catalog: Catalog, itemIds: string[]): { rows: Record<string, unknown>[]; missing: number } {
  let missing = 0;
  const rows = itemIds.map((id) => {
    const r = catalog.rows.get(id);
    if (!r) missing++;
    return r ?? {};
  });
  return { rows, missing };
}
