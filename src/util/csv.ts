// Delimited files with RFC 4180 quoting, through csv-parse: a quoted field may hold the delimiter, "" for a
// quote, and line breaks (a line-by-line split cuts such a record in two). The catalog readers of both the
// model directory (users.csv / items.csv) and training (item catalogs) read through here.
import { createReadStream } from 'node:fs';
import { parse, type CsvError } from 'csv-parse';

export interface CsvRecord {
  cells: string[];
  /** 1-based line the record ends on (a record with quoted line breaks spans several). */
  line: number;
}

export interface CsvOptions {
  /** One or more characters ('::' works). */
  delimiter?: string;
  encoding?: BufferEncoding;
  /** Builds the caller's error from a parse failure (an unterminated quote), with the file in it. */
  fail: (message: string) => Error;
}

/**
 * The records of a delimited file, in order; blank and whitespace-only lines are skipped, a byte-order mark is
 * dropped. Rows may differ in length (callers check against their header and name the line). A quote inside an
 * unquoted field is kept as text (12" Vinyl), as spreadsheets write it.
 */
export async function* readCsv(file: string, { delimiter = ',', encoding = 'utf8', fail }: CsvOptions): AsyncGenerator<CsvRecord> {
  const parser = createReadStream(file, { encoding }).pipe(
    parse({ delimiter, record_delimiter: ['\r\n', '\n'], bom: true, relax_column_count: true, relax_quotes: true, skip_empty_lines: true, info: true }),
  );
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      if (record.length === 1 && record[0].trim() === '') continue;
      yield { cells: record, line: info.lines };
    }
  } catch (e) {
    if ((e as CsvError).code?.startsWith('CSV_')) throw fail(`${file}: ${(e as Error).message}`);
    throw e;
  }
}
