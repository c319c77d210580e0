// The Seldon v1 codec on its own, from the named payloads in test/testdata/seldon-v1: each predict
// payload decodes to its recorded request (or is refused with its recorded error), recorded model
// outputs encode to the recorded answer, and each feedback payload yields its recorded shown lists
// and chosen items. The parity suite sends the same payloads over REST and gRPC.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PARAMS } from '../../../src/config/index.js';
import { LIMIT_DEFAULTS } from '../../../src/config/limits.js';
import { RecserveError } from '../../../src/errors.js';
import { loadArtifact } from '../../../src/model-format/artifact.js';
import { ensureDemoModel } from '../../../src/model-format/demo.js';
import { OrtScorer } from '../../../src/model/ort-scorer.js';
import { Recommender } from '../../../src/model/recommender.js';
import { decodePredict, encodePredict, type PredictOutput } from '../../../src/protocols/seldon-v1/codec.js';
import { hasPayload, listsFromPayloads, parseTruth } from '../../../src/protocols/seldon-v1/feedback-codec.js';
import type { SeldonMessage } from '../../../src/protocols/seldon-v1/messages.js';
import { feedbackPayloads, predictPayloads, type ExpectedError } from '../../helpers/seldon-payloads.js';

/** Runs fn and checks it fails with the recorded kind and message. */
function expectRefusal(fn: () => unknown, want: ExpectedError): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'refused').toBeInstanceOf(RecserveError);
  const err = thrown as RecserveError;
  expect(err.kind).toBe(want.kind);
  if (want.message !== undefined) expect(err.message).toBe(want.message);
  if (want.messageStartsWith !== undefined) expect(err.message.startsWith(want.messageStartsWith), err.message).toBe(true);
}

const payloads = predictPayloads();

describe('Seldon v1 codec: decodePredict', () => {
  it('has a payload of each form and refusals to read', () => {
    expect(payloads.filter((p) => p.decoded).map((p) => (p.decoded as { kind: string }).kind).sort()).toEqual(
      expect.arrayContaining(['binData', 'jsonData', 'ndarray', 'strData', 'tensor']),
    );
    expect(payloads.filter((p) => p.error).length).toBeGreaterThan(20);
    // Every file records exactly one outcome, and accepted/refused files are named for it.
    for (const p of payloads) {
      expect(p.decoded === undefined, `${p.file}: one of decoded, error`).toBe(p.error !== undefined);
      expect(p.file.startsWith('bad-'), `${p.file}: bad-* files are refused`).toBe(p.error !== undefined);
    }
  });

  for (const p of payloads) {
    it(`${p.file}: ${p.about}`, () => {
      // The codec may annotate what it decodes; each case gets its own copy of the message.
      const msg = structuredClone(p.message) as SeldonMessage;
      if (p.error) expectRefusal(() => decodePredict(msg, DEFAULT_PARAMS, LIMIT_DEFAULTS), p.error);
      else expect(decodePredict(msg, DEFAULT_PARAMS, LIMIT_DEFAULTS)).toEqual(p.decoded);
    });
  }
});

describe('Seldon v1 codec: encodePredict', () => {
  const answered = payloads.filter((p) => p.answer);
  it('has answers in every form', () => {
    const kinds = answered.map((p) => (p.decoded as { kind: string }).kind);
    expect(new Set(kinds)).toEqual(new Set(['binData', 'jsonData', 'ndarray', 'strData', 'tensor']));
  });

  for (const p of answered) {
    it(`${p.file}: the answer in the request's form`, () => {
      const { kind } = decodePredict(structuredClone(p.message) as SeldonMessage, DEFAULT_PARAMS, LIMIT_DEFAULTS);
      const output = p.answer!.output as PredictOutput;
      if (p.answer!.error) expectRefusal(() => encodePredict(kind, output), p.answer!.error);
      else expect(encodePredict(kind, output)).toEqual(p.answer!.payload);
    });
  }
});

describe('Seldon v1 feedback codec', () => {
  // Strategies are read from the model (known user → personalized), so a real one: the demo model.
  let dir: string;
  let model: Recommender;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-codec-'));
    const artifact = await loadArtifact(await ensureDemoModel(dir));
    model = new Recommender(artifact, await OrtScorer.create(artifact.onnx, artifact.signature, artifact.itemIds.length));
  });
  afterAll(async () => {
    await model?.scorer.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const p of feedbackPayloads()) {
    it(`${p.file}: ${p.about}`, () => {
      const fb = structuredClone(p.feedback) as { request?: SeldonMessage; response?: SeldonMessage; truth?: SeldonMessage };
      const read = () => ({
        shown: listsFromPayloads(fb.request, fb.response, model, DEFAULT_PARAMS, LIMIT_DEFAULTS, p.maxRows ?? 50),
        chosen: fb.truth && hasPayload(fb.truth) ? parseTruth(fb.truth, LIMIT_DEFAULTS) : null,
      });
      if (p.error) expectRefusal(read, p.error);
      else expect(read()).toEqual({ shown: p.shown, chosen: p.chosen });
    });
  }
});
