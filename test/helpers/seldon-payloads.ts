// The named Seldon v1 payloads in test/testdata/seldon-v1 (README.md there describes the format):
// the codec tests decode them directly, the REST ⇔ gRPC parity suite sends them over both transports.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const SELDON_TESTDATA = path.resolve(import.meta.dirname, '../testdata/seldon-v1');

/** The outcome a refused payload must have: its error kind and its message (exact, or its start). */
export interface ExpectedError {
  kind: string;
  message?: string;
  messageStartsWith?: string;
}

export interface PredictPayload {
  file: string;
  about: string;
  /** The parity suite's test title, for the payloads it sends. */
  name?: string;
  message: Record<string, unknown>;
  /** decodePredict's answer, or the error it raises. */
  decoded?: unknown;
  error?: ExpectedError;
  /** A model output and what encodePredict makes of it in the request's form (or its error). */
  answer?: { output: unknown; payload?: unknown; error?: ExpectedError };
}

export interface FeedbackPayload {
  file: string;
  about: string;
  feedback: Record<string, unknown> & { request?: unknown; response?: unknown; truth?: unknown };
  /** The bound on shown items the lists are read with, when the file tests it. */
  maxRows?: number;
  /** The lists read from request and response, and the items read from truth; or the error. */
  shown?: unknown;
  chosen?: unknown;
  error?: ExpectedError;
}

function read<T>(file: string): T & { file: string } {
  return { file, ...(JSON.parse(readFileSync(path.join(SELDON_TESTDATA, file), 'utf8')) as T) };
}

const filesStarting = (...prefixes: string[]) =>
  readdirSync(SELDON_TESTDATA)
    .filter((f) => f.endsWith('.json') && prefixes.some((p) => f.startsWith(p)))
    .sort();

/** One predict payload by file name (without .json). */
export const predictPayload = (name: string): PredictPayload => read<PredictPayload>(`${name}.json`);

/** Every predict payload, good (predict-*) and bad (bad-*). */
export const predictPayloads = (): PredictPayload[] => filesStarting('predict-', 'bad-').map((f) => read<PredictPayload>(f));

/** Every feedback payload (feedback-*). */
export const feedbackPayloads = (): FeedbackPayload[] => filesStarting('feedback-').map((f) => read<FeedbackPayload>(f));
