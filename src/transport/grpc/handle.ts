// One wrapper around every unary RPC: it decodes the request bytes, runs the data-plane call with an
// AbortSignal tied to the call's cancellation and deadline, encodes the answer, and guarantees that each
// call is answered exactly once, with its error translated by the one error catalogue, counted in the
// metrics and logged. grpc-js sees only bytes (identity serializers), so a malformed message is our
// INVALID_ARGUMENT rather than grpc-js' generic INTERNAL "Error deserializing request".
import * as grpc from '@grpc/grpc-js';
import type { DescMessage } from '@bufbuild/protobuf';
import type { Config } from '../../config/index.js';
import { badData, RecserveError, translate } from '../../errors.js';
import type { CallContext, DataPlane } from '../../protocols/seldon-v1/dataplane.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Metrics } from '../../telemetry/metrics.js';
import { checkDepth, checkValueCount, tooDeep } from '../../protocols/json.js';
import { wireShape } from './wire-budget.js';
import { decodeToJson, encodeFromJson, type JsonObject } from '../../protocols/seldon-v1/proto-json.js';

export interface HandleDeps {
  config: Config;
  dataplane: DataPlane;
  metrics: Metrics;
  log: Logger;
  /** Told the peer ("address:port") of every call, so the server can tell used connections from squatters. */
  onCall?: (peer: string) => void;
}

export interface UnaryRpc {
  /** Full method path, e.g. /seldon.protos.Model/Predict. */
  path: string;
  requestType: DescMessage;
  responseType: DescMessage;
  /** The data-plane call: JSON-form request in, JSON-form response out. Throw a RecserveError to refuse. */
  run(request: JsonObject, ctx: CallContext): unknown;
}

/** The header the Seldon executor puts a request's puid in (REST reads the same one). */
const PUID_HEADER = 'seldon-puid';
/** Trailer naming the Seldon reason (MICROSERVICE_BAD_DATA, …) next to the gRPC status. */
export const REASON_TRAILER = 'seldon-reason';

export function unary(rpc: UnaryRpc, deps: HandleDeps): grpc.handleUnaryCall<Buffer, Buffer> {
  const { config, metrics, log } = deps;
  const route = rpc.path.slice(1);
  const maxSend = config.grpcMaxMessageBytes;

  return (call, callback) => {
    const started = process.hrtime.bigint();
    deps.onCall?.(call.getPeer());
    const endTimer = metrics.startRequest('grpc', route);
    const abort = new AbortController();
    const puidHeader = call.metadata.get(PUID_HEADER)[0];
    const ctx: CallContext = { transport: 'grpc', puid: typeof puidHeader === 'string' && puidHeader ? puidHeader : undefined, signal: abort.signal };
    let answered = false;
    let puid: string | undefined = ctx.puid;
    let payload: unknown;

    const record = (code: grpc.status, err?: unknown) => {
      endTimer(grpc.status[code]);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const entry: Record<string, unknown> = { transport: 'grpc', route, code: grpc.status[code], duration_ms: Math.round(ms * 1000) / 1000, puid };
      if (config.logPayloads && payload !== undefined) entry.payload = payload;
      if (code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN) log.error({ ...entry, err }, 'rpc failed');
      else log.info(entry, 'rpc');
    };

    const fail = (err: unknown) => {
      if (answered) return;
      answered = true;
      const t = translate(err);
      const trailer = new grpc.Metadata();
      trailer.set(REASON_TRAILER, t.reason);
      callback({ code: t.grpc, details: t.message, metadata: trailer });
      record(t.grpc, t.kind === 'internal' ? err : undefined);
    };

    const succeed = (bytes: Uint8Array) => {
      if (answered) return;
      answered = true;
      callback(null, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      record(grpc.status.OK);
    };

    // grpc-js emits 'cancelled' when the client cancels, the connection drops, or the deadline passes
    // (it has then already sent DEADLINE_EXCEEDED itself); the work in flight then sees the abort. It also
    // emits it after a normal end, when `answered` is already set and there is nothing left to abort.
    call.on('cancelled', () => {
      // After the answer nothing is in flight: no abort, and no error object (with its stack) to build.
      if (answered) return;
      const expired = deadlinePassed(call.getDeadline());
      abort.abort(new RecserveError('unavailable', expired ? 'the deadline passed' : 'the caller cancelled the call'));
      answered = true;
      record(expired ? grpc.status.DEADLINE_EXCEEDED : grpc.status.CANCELLED);
    });

    void (async () => {
      // Counted on the wire first: decoding builds an object per field before any check can run.
      const { limits } = config;
      // A JSON level is two message levels on the wire (Value → ListValue/Struct → Value), plus the envelope.
      const wireDepth = 2 * limits.maxJsonDepth + 8;
      const shape = wireShape(rpc.requestType, call.request, limits.maxJsonValues, wireDepth);
      if (shape.malformedAt >= 0) throw badData(`malformed ${rpc.requestType.typeName} message: unreadable bytes at offset ${shape.malformedAt}`);
      checkValueCount(shape.values, limits.maxJsonValues, 'the message');
      if (shape.depth > wireDepth) throw tooDeep('the message', limits.maxJsonDepth);
      let request: JsonObject;
      try {
        request = decodeToJson(rpc.requestType, call.request);
      } catch (e) {
        // A RangeError here is a message nested past the stack (google.protobuf.Value in Value …).
        const why = e instanceof RangeError && /call stack/i.test(e.message) ? 'nested too deeply' : (e as Error).message;
        throw badData(`malformed ${rpc.requestType.typeName} message: ${why}`);
      }
      // The same nesting bound as a REST body's, before anything recurses over the message.
      checkDepth(request, config.limits.maxJsonDepth, 'the message');
      payload = request;
      if (abort.signal.aborted || call.cancelled) return;
      const result = (await rpc.run(request, ctx)) as JsonObject;
      if (abort.signal.aborted || answered) return;
      const meta = (result as { meta?: { puid?: string } }).meta;
      if (meta?.puid) puid = meta.puid;
      let bytes: Uint8Array;
      try {
        bytes = encodeFromJson(rpc.responseType, result);
      } catch (e) {
        log.error({ err: e, route }, 'cannot encode the response');
        throw new RecserveError('internal', 'internal error: the response could not be encoded');
      }
      if (maxSend > 0 && bytes.byteLength > maxSend) {
        throw new RecserveError(
          'payload_too_large',
          `the response is ${bytes.byteLength} bytes, above the gRPC max message size of ${maxSend} bytes ` +
            '(raise seldon.io/grpc-max-message-size or RECSERVE_GRPC_MAX_MESSAGE_SIZE, or ask for fewer users or a smaller k)',
        );
      }
      succeed(bytes);
    })().catch(fail);
  };
}

function deadlinePassed(deadline: grpc.Deadline): boolean {
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  // grpc-js' own deadline timer may fire a millisecond early by the clock.
  return Number.isFinite(ms) && Date.now() >= ms - 5;
}
