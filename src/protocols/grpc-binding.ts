// What a protocol module hands the gRPC transport: its services as tables of unary methods, each a
// decode → run → encode over protobuf bytes, plus the .proto files reflection describes and what
// "serving" means for health. The transport (src/transport/grpc) mounts these and owns the call
// mechanics (wire budget, deadlines, cancellation, metrics, logs, error statuses), so protocols never
// import a transport and one transport serves every protocol the same way.
import type { DescFile, DescMessage, DescMethod, DescService } from '@bufbuild/protobuf';
import type { CallContext, Protocol } from '../core/types.js';

export interface UnaryMethod<Req = any, Res = any> {
  /** Full method path, e.g. /seldon.protos.Model/Predict. */
  path: string;
  /** The method's name in the .proto (grpc-js' originalName). */
  localName: string;
  requestType: DescMessage;
  responseType: DescMessage;
  /** Request bytes (already within the wire budget) → what `run` takes; throws on malformed bytes. */
  decode(bytes: Uint8Array): Req;
  /** The call itself; throw a RecserveError to refuse. */
  run(request: Req, ctx: CallContext): Res | Promise<Res>;
  /** The answer as protobuf bytes. */
  encode(result: Res): Uint8Array;
  /** The prediction id an answer names, for the call's log line. */
  answerId?(result: Res): string | undefined;
  /** The request as the payload log shows it (JSON-safe; only built when payloads are logged). */
  logged?(request: Req): unknown;
}

export interface GrpcService {
  /** Full service name (seldon.protos.Model, inference.GRPCInferenceService): health reports on it. */
  name: string;
  methods: UnaryMethod[];
}

export interface GrpcProtocol {
  protocol: Protocol;
  /** The .proto files the services come from, with everything they import (for reflection). */
  files: DescFile[];
  services: GrpcService[];
  /** Whether the services can answer now: grpc.health.v1 reports SERVING for them then. */
  isServing(): boolean;
  /** Request metadata key carrying a prediction id from outside the message (CallContext.puid). */
  puidHeader?: string;
  /** Trailers an error answer carries beside its status and message (Seldon: its reason). */
  errorTrailers?(error: { reason: string }): Record<string, string>;
}

/**
 * The methods of a generated service descriptor, each bound to its behaviour. A method the .proto
 * declares without a behaviour fails at start-up, not at call time.
 */
export function bindMethods(
  svc: DescService,
  behaviour: (method: DescMethod) => Omit<UnaryMethod, 'path' | 'localName' | 'requestType' | 'responseType'> | undefined,
  owner: string,
): UnaryMethod[] {
  return svc.methods.map((method) => {
    const b = behaviour(method);
    if (!b) throw new Error(`${svc.file.proto.name} declares ${svc.typeName}/${method.name} but ${owner} has no behaviour for it`);
    return { ...b, path: `/${svc.typeName}/${method.name}`, localName: method.localName, requestType: method.input, responseType: method.output };
  });
}
