// Every curl example in the README is run against the demo model (as `npm start` serves it) and its
// answer compared with the one the README shows. `npm run docs:examples` rewrites the shown answers.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { difference, findExamples, formatAnswer, normalise, rewriteAnswers, runExample } from './readme-examples.js';

const README = path.resolve(import.meta.dirname, '../../README.md');
const WRITE = process.env.RECSERVE_README_WRITE === '1';
const HAS_CURL = spawnSync('curl', ['--version']).status === 0;
if (!HAS_CURL) console.warn('README examples: skipped, curl is not installed (the examples are curl commands; .ci/run installs it)');

describe('README examples', () => {
  let srv: TestServer;
  const markdown = readFileSync(README, 'utf8');
  const examples = findExamples(markdown);

  beforeAll(async () => {
    // The bandit's draws are seeded so the cold-start example answers the same way every run.
    srv = await startTestServer({ RECSERVE_BANDIT_SEED: '7' });
  });
  afterAll(() => srv?.stop());

  it('finds the examples', () => {
    expect(examples.length).toBeGreaterThanOrEqual(8);
  });

  it.skipIf(!HAS_CURL)('each curl answers what the README shows, in order (later examples see earlier feedback)', async () => {
    const ports = srv.server.ports;
    const answers: string[] = [];
    const problems: string[] = [];
    for (const ex of examples) {
      const text = await runExample(ex.command, ports);
      let actual: unknown;
      try {
        actual = JSON.parse(text);
      } catch {
        problems.push(`README line ${ex.line}: the answer is not JSON: ${text.slice(0, 200)}`);
        answers.push(ex.shown.trimEnd());
        continue;
      }
      answers.push(formatAnswer(normalise(actual)));
      if (WRITE) continue;
      let shown: unknown;
      try {
        shown = JSON.parse(ex.shown);
      } catch {
        problems.push(`README line ${ex.line}: the shown answer is not JSON`);
        continue;
      }
      const d = difference(normalise(shown), normalise(actual));
      if (d) problems.push(`README line ${ex.line} (${ex.command.slice(0, 80)}…): ${d}`);
    }
    if (WRITE) writeFileSync(README, rewriteAnswers(markdown, examples, answers));
    expect(problems, `${problems.join('\n')}\n(run \`npm run docs:examples\` to rewrite the shown answers)`).toEqual([]);
  }, 120_000);
});
