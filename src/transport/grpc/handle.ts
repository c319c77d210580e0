// One wrapper around every unary RPC of every protocol (src/protocols/grpc-binding.ts): it checks the
// request bytes against the wire budget, has the protocol decode them, runs its call with an AbortSignal
// tied to the call's cancellation and deadline, has it encode the answer, and guarantees that each call
// is answered exactly once, with its error translated by the one error catalogue, counted in the metrics
// and logged. grpc-js sees only bytes (identity serializers), so a malformed message is our
// INVALID_ARGUMENT rather than grpc-js' generic INTERNAL "Error deserializing request".
import * as grpc from '@grpc/grpc-js';
import type { Config } from '../../config/index.js';
import type { CallContext } from '../../core/types.js';
import { badData, RecserveError, translate } from '../../errors.js';
import type { GrpcProtocol, UnaryMethod } from '../../protocols/grpc-binding.js';
import { checkValueCount, tooDeep } from '../../protocols/json.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Metrics } from '../../telemetry/metrics.js';
import { wireShape } from './wire-budget.js';

export interface CallDeps {
  config: Config;
  metrics: Metrics;
  log: Logger;
  /** Told the peer ("address:port") of every call, so the server can tell used connections from squatters. */
  onCall?: (peer: string) => void;
}

const identity = (b: Buffer) => b;

/** A protocol's services as grpc-js service definitions and implementations (bytes in, bytes out). */
export function mountProtocol(server: grpc.Server, protocol: GrpcProtocol, deps: CallDeps): void {
  for (const svc of protocol.services) {
    const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
    const implementation: grpc.UntypedServiceImplementation = {};
    for (const m of svc.methods) {
      const name = m.path.slice(m.path.lastIndexOf('/') + 1);
      definition[name] = {
        path: m.path,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
        originalName: m.localName,
      };
      implementation[name] = unary(m, protocol, deps);
    }
    server.addService(definition as grpc.ServiceDefinition, implementation);
  }
}

function unary(rpc: UnaryMethod, protocol: GrpcProtocol, deps: CallDeps): grpc.handleUnaryCall<Buffer, Buffer> {
  const { config, metrics, log } = deps;
  const route = rpc.path.slice(1);
  const maxSend = config.grpcMaxMessageBytes;

  return (call, callback) => {
    const started = process.hrtime.bigint();
    deps.onCall?.(call.getPeer());
    const endTimer = metrics.startRequest('grpc', route);
    const abort = new AbortController();
    const puidHeader = protocol.puidHeader === undefined ? undefined : call.metadata.get(protocol.puidHeader)[0];
    const ctx: CallContext = { transport: 'grpc', protocol: protocol.protocol, puid: typeof puidHeader === 'string' && puidHeader ? puidHeader : undefined, signal: abort.signal };
    let answered = false;
    let puid: string | undefined = ctx.puid;
    let request: unknown;

    const record = (code: grpc.status, err?: unknown) => {
      endTimer(grpc.status[code]);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const entry: Record<string, unknown> = { transport: 'grpc', protocol: protocol.protocol, route, code: grpc.status[code], duration_ms: Math.round(ms * 1000) / 1000, puid };
      if (config.logPayloads && request !== undefined) entry.payload = rpc.logged ? rpc.logged(request) : request;
      if (code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN) log.error({ ...entry, err }, 'rpc failed');
      else log.info(entry, 'rpc');
    };

    const fail = (err: unknown) => {
      if (answered) return;
      answered = true;
      const t = translate(err);
      const trailer = new grpc.Metadata();
      for (const [k, v] of Object.entries(protocol.errorTrailers?.(t) ?? {})) trailer.set(k, v);
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
      try {
        request = rpc.decode(call.request);
      } catch (e) {
        if (e instanceof RecserveError) throw e;
        // A RangeError here is a message nested past the stack (google.protobuf.Value in Value …).
        const why = e instanceof RangeError && /call stack/i.test(e.message) ? 'nested too deeply' : (e as Error).message;
        throw badData(`malformed ${rpc.requestType.typeName} message: ${why}`);
      }
      if (abort.signal.aborted || call.cancelled) return;
      const result = await rpc.run(request, ctx);
      if (abort.signal.aborted || answered) return;
      puid = rpc.answerId?.(result) ?? puid;
      let bytes: Uint8Array;
      try {
        bytes = rpc.encode(result);
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
