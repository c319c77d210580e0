// The predict and feedback hot path without express. On this 2-core machine express's
// per-request machinery (prototype swaps, the router's layer walk, body-parser, response helpers)
// cost about 70 µs of event-loop time per request — more than decoding, the data plane and encoding
// together — so the plainest, most common request skips it:
//   POST to a Seldon predict or feedback route of openapi.yaml, exactly as spelled there, or to a V2
//   /v2/models/{name}/infer whose name is plain ([A-Za-z0-9_.-]) and with no binary part, no query string,
//   Content-Type application/json (optionally ; charset=utf-8), no Content-Encoding or
//   Transfer-Encoding, a Content-Length within the body limit.
// Everything else (multipart, forms, ?json=, chunked or compressed bodies, other spellings of the
// path, every other route) goes to the express app untouched. The answer is built by the same
// functions the express routes use — parseJson, the data plane (which validates), translate and the Seldon
// error body, and requestRecorder for the access log and metrics — so both paths answer alike
// (test/rest/fast-path.test.ts sends the same requests through both and compares).
import type http from 'node:http';
import { translate } from '../../errors.js';
import { openapi } from '../../protocols/contract.js';
import { abortOnClose } from '../../protocols/http.js';
import type { CallContext, DataPlane } from '../../protocols/seldon-v1/dataplane.js';
import type { Feedback, SeldonMessage } from '../../protocols/seldon-v1/messages.js';
import type { InferAnswer, InferCall, InferSeen } from '../../protocols/v2/rest-routes.js';
import { bodyError, contentLength, requestRecorder, seldonErrorWriter, type ErrorWriter, type RestDeps } from './app.js';
import { parseJson } from '../../protocols/seldon-v1/rest-routes.js';

type Op = 'predict' | 'feedback';

/** operationIds of openapi.yaml whose POST this path answers, and what they do. */
const FAST_OPERATIONS: Record<string, Op> = {
  predictV1: 'predict',
  predictV01: 'predict',
  predictPost: 'predict',
  feedbackV1: 'feedback',
  feedbackV01: 'feedback',
  feedbackPost: 'feedback',
};

/** Wraps the express app: fast requests are answered here, all others are passed to `app` as they came. */
export interface FastPathDeps extends Pick<RestDeps, 'config' | 'metrics' | 'log' | 'whenServing'> {
  dataplane: DataPlane;
  /** The V2 inference (protocols/v2) and its error body; without it V2 requests go to express. */
  v2?: { infer: (call: InferCall) => Promise<InferAnswer>; errorWriter: ErrorWriter };
}

/** A V2 infer path this path answers: the route template for metrics, and the model name. */
const V2_INFER = /^\/v2\/models\/([A-Za-z0-9_.-]{1,128})\/infer$/;
const V2_INFER_ROUTE = '/v2/models/{name}/infer';

export function withFastPath(deps: FastPathDeps, app: http.RequestListener): http.RequestListener {
  const routes = new Map<string, Op>();
  for (const [route, item] of Object.entries(openapi().doc.paths)) {
    const id = (item.post as { operationId?: string } | undefined)?.operationId;
    if (id && FAST_OPERATIONS[id] && !route.includes('{')) routes.set(route, FAST_OPERATIONS[id]);
  }
  const limit = deps.config.bodyLimitBytes;
  const record = requestRecorder(deps);
  const { dataplane, log, whenServing } = deps;

  return (req, res) => {
    const url = req.url ?? '';
    const seldonOp = req.method === 'POST' ? routes.get(url) : undefined;
    // The V2 pattern is tried only for a POST that is not a Seldon route.
    const v2Model = req.method === 'POST' && seldonOp === undefined && deps.v2 && req.headers['inference-header-content-length'] === undefined ? V2_INFER.exec(url)?.[1] : undefined;
    const op: Op | 'v2infer' | undefined = seldonOp ?? (v2Model !== undefined ? 'v2infer' : undefined);
    const length = op ? plainJsonLength(req.headers) : -1;
    if (!op || length <= 0 || length > limit) {
      app(req, res);
      return;
    }
    const route = op === 'v2infer' ? V2_INFER_ROUTE : url;
    const started = process.hrtime.bigint();
    let puid: unknown;
    let payload: unknown;
    res.on('finish', () => record('POST', url, route, res.statusCode, started, puid, payload));
    // CORS for every origin, as the express app answers.
    res.setHeader('Access-Control-Allow-Origin', '*');

    const fail = (err: unknown) => {
      const e = bodyError(err) ?? err;
      const t = translate(e);
      if (t.kind === 'internal') log.error({ err, path: route }, 'unhandled error');
      if (res.headersSent) {
        res.end();
        return;
      }
      const { status, body } = (op === 'v2infer' ? deps.v2!.errorWriter : seldonErrorWriter)(e);
      writeJson(res, status, body);
    };

    const run = async (body: Buffer) => {
      const signal = abortOnClose(res);
      if (op === 'v2infer') {
        const seen: InferSeen = {};
        try {
          const answer = await deps.v2!.infer({ name: v2Model!, version: undefined, body, headerLength: undefined, ctx: { transport: 'rest', protocol: 'v2', signal }, seen });
          // Binary answers (binary_data_output) are written as the express route writes them.
          if (answer.binary === null) writeJson(res, 200, answer.json);
          else writeBinary(res, answer.binary.headerLength, answer.binary.body);
        } finally {
          payload = seen.payload;
          puid = seen.id;
        }
        return;
      }
      const header = req.headers['seldon-puid'];
      const ctx: CallContext = { transport: 'rest', puid: (typeof header === 'string' && header) || undefined, signal };
      const msg = parseJson(body.toString('utf8'), 'body', deps.config.limits);
      payload = msg;
      if (whenServing) await whenServing(); // before the model is warm, wait for it (bounded)
      if (op === 'predict') {
        const out = await dataplane.predict(msg as SeldonMessage, ctx);
        puid = out.meta?.puid;
        writeJson(res, 200, out);
      } else {
        const fb = msg as Feedback;
        puid = fb?.response?.meta?.puid ?? fb?.request?.meta?.puid;
        writeJson(res, 200, await dataplane.feedback(fb, ctx));
      }
    };

    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
    });
    req.on('end', () => {
      run(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received)).catch(fail);
    });
    req.on('close', () => {
      if (!req.complete) fail({ type: 'request.aborted' });
    });
    req.on('error', fail);
  };
}

/** Content-Length of a plain JSON body this path may read, else -1 (the express app reads it). */
function plainJsonLength(h: http.IncomingHttpHeaders): number {
  const type = h['content-type'];
  if (type === undefined || !PLAIN_JSON.test(type) || h['content-encoding'] !== undefined || h['transfer-encoding'] !== undefined) return -1;
  return contentLength(h);
}

/** The Content-Types taken here; any other spelling is left to express's own parser. */
const PLAIN_JSON = /^application\/json(\s*;\s*charset="?utf-8"?)?\s*$/i;

/** What the express V2 route writes for a binary answer. */
function writeBinary(res: http.ServerResponse, headerLength: number, body: Buffer): void {
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Inference-Header-Content-Length', String(headerLength));
  res.setHeader('Content-Length', body.length);
  res.end(body);
}

/** What express's res.json writes: the same body, Content-Type and Content-Length. */
function writeJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
