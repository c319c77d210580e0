// grpc.health.v1.Health (Check, Watch, List) for a fixed set of service names. It replaces
// grpc-health-check's HealthImplementation, which kept a watcher entry per requested name forever (900
// cancelled Watches of distinct 1 MB names took RSS from 155 to 809 MB) and quoted the whole name in
// NOT_FOUND details (an oversized trailer that broke the HTTP/2 connection). Here nothing is ever stored
// under a client-supplied name, names are length-checked before any lookup, only a short prefix is
// quoted, and open Watch streams are capped. The two messages are coded by hand (field 1 each), so a
// malformed request is INVALID_ARGUMENT rather than grpc-js' INTERNAL, and an oversized name is never
// turned into a string.
import * as grpc from '@grpc/grpc-js';
import { clip } from '../../errors.js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** HealthCheckResponse.ServingStatus numbers. */
const STATUS_NUMBER = { SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const;

/** Most characters of an unknown name quoted in a NOT_FOUND. */
const QUOTED_NAME_CHARS = 64;
/** Default cap on open Watch streams over all connections. */
export const DEFAULT_MAX_WATCHES = 1000;

export interface HealthOptions {
  /** Longest service name accepted (characters); longer ones are INVALID_ARGUMENT before any lookup. */
  maxNameLength: number;
  /** Text appended to the too-long refusal naming the limit (limitHint). */
  nameLimitHint?: string;
  /** Most Watch streams open at once; more are RESOURCE_EXHAUSTED. */
  maxWatches?: number;
}

/** A decoded HealthCheckRequest, or why it was not one. */
type HealthRequest = { service: string } | { refused: string };

type WatchCall = grpc.ServerWritableStream<HealthRequest, Buffer>;

export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  /** Open Watch streams per known name; the keys are fixed at construction. */
  private readonly watchers = new Map<string, Set<WatchCall>>();
  /** Watches of names we do not serve: held only so the cap counts them and close() can end them. */
  private readonly unknownWatchers = new Set<WatchCall>();
  private readonly maxWatches: number;

  constructor(
    names: readonly string[],
    initial: ServingStatus,
    private readonly opts: HealthOptions,
  ) {
    for (const n of names) {
      this.statuses.set(n, initial);
      this.watchers.set(n, new Set());
    }
    this.maxWatches = opts.maxWatches ?? DEFAULT_MAX_WATCHES;
  }

  /** Sets a known name's status and tells its watchers; unknown names are ignored (never stored). */
  setStatus(name: string, status: ServingStatus): void {
    if (!this.statuses.has(name) || this.statuses.get(name) === status) return;
    this.statuses.set(name, status);
    for (const w of this.watchers.get(name)!) send(w, STATUS_NUMBER[status]);
  }

  setAll(status: ServingStatus): void {
    for (const n of this.statuses.keys()) this.setStatus(n, status);
  }

  /** Ends every open Watch with OK (clients retry per the health protocol), so a graceful shutdown need not wait for them. */
  endWatches(): void {
    for (const set of [...this.watchers.values(), this.unknownWatchers]) {
      for (const w of set) if (!w.destroyed && !w.writableEnded) w.end();
      set.clear();
    }
  }

  /** What the service holds: the names it keys state by (always the known ones) and the open Watch streams. */
  stats(): { keyedNames: number; openWatches: number; unknownWatches: number } {
    let open = this.unknownWatchers.size;
    for (const set of this.watchers.values()) open += set.size;
    return { keyedNames: this.watchers.size, openWatches: open, unknownWatches: this.unknownWatchers.size };
  }

  addToServer(server: grpc.Server): void {
    server.addService(this.definition(), {
      Check: (call: grpc.ServerUnaryCall<HealthRequest, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const req = call.request;
        if ('refused' in req) return callback({ code: grpc.status.INVALID_ARGUMENT, details: req.refused });
        const status = this.statuses.get(req.service);
        if (!status) return callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${JSON.stringify(clip(req.service, QUOTED_NAME_CHARS))}` });
        callback(null, encodeStatus(STATUS_NUMBER[status]));
      },
      Watch: (call: WatchCall) => {
        const req = call.request;
        if ('refused' in req) return fail(call, grpc.status.INVALID_ARGUMENT, req.refused);
        if (this.stats().openWatches >= this.maxWatches) {
          return fail(call, grpc.status.RESOURCE_EXHAUSTED, `too many health Watch streams open (at most ${this.maxWatches}); use Check or retry later`);
        }
        const set = this.watchers.get(req.service) ?? this.unknownWatchers;
        set.add(call);
        const forget = () => set.delete(call);
        call.once('cancelled', forget);
        call.once('close', forget);
        call.once('finish', forget);
        const status = this.statuses.get(req.service);
        send(call, status ? STATUS_NUMBER[status] : STATUS_NUMBER.SERVICE_UNKNOWN);
      },
      List: (_call: grpc.ServerUnaryCall<HealthRequest, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        callback(null, encodeList(this.statuses));
      },
    });
  }

  private definition(): grpc.ServiceDefinition {
    const decode = (bytes: Buffer) => decodeRequest(bytes, this.opts.maxNameLength, this.opts.nameLimitHint ?? '');
    const method = (name: string, responseStream: boolean) => ({
      path: `/grpc.health.v1.Health/${name}`,
      requestStream: false,
      responseStream,
      requestSerialize: (r: Buffer) => r,
      requestDeserialize: decode,
      responseSerialize: (r: Buffer) => r,
      responseDeserialize: (r: Buffer) => r,
      originalName: name.toLowerCase(),
    });
    return { Check: method('Check', false), Watch: method('Watch', true), List: method('List', false) };
  }
}

function send(call: WatchCall, status: number): void {
  if (!call.destroyed && !call.writableEnded) call.write(encodeStatus(status));
}

function fail(call: WatchCall, code: grpc.status, details: string): void {
  // grpc-js' server stream turns an 'error' into the call's status and ends it.
  call.emit('error', { code, details });
}

// ---- wire format ---------------------------------------------------------------------------

const encodeStatus = (status: number) => Buffer.from([0x08, status]); // field 1, varint

function varint(n: number): number[] {
  const out: number[] = [];
  for (; n > 127; n = Math.floor(n / 128)) out.push((n & 127) | 128);
  out.push(n);
  return out;
}

/** HealthListResponse: map<string, HealthCheckResponse> statuses = 1. */
function encodeList(statuses: Map<string, ServingStatus>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, status] of statuses) {
    const key = Buffer.from(name, 'utf8');
    const entry = Buffer.concat([Buffer.from([0x0a, ...varint(key.length)]), key, Buffer.from([0x12, 2, 0x08, STATUS_NUMBER[status]])]);
    parts.push(Buffer.from([0x0a, ...varint(entry.length)]), entry);
  }
  return Buffer.concat(parts);
}

/** Reads a varint at `pos`; null when truncated or longer than 10 bytes. */
function readVarint(buf: Buffer, pos: number): { value: number; next: number } | null {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10 && pos + i < buf.length; i++) {
    const b = buf[pos + i];
    value += (b & 127) * scale;
    scale *= 128;
    if (b < 128) return { value, next: pos + i + 1 };
  }
  return null;
}

/**
 * HealthCheckRequest { string service = 1 }, skipping unknown fields as proto3 does. A name longer than
 * `maxChars` is refused from its byte length where possible (UTF-8 needs at most 3 bytes per UTF-16 unit),
 * so a megabyte name is never decoded into a string.
 */
export function decodeRequest(buf: Buffer, maxChars: number, hint: string): HealthRequest {
  const malformed = { refused: 'malformed HealthCheckRequest' };
  const tooLong = { refused: `health service name is longer than ${maxChars} characters${hint}` };
  let service = '';
  let pos = 0;
  while (pos < buf.length) {
    const tag = readVarint(buf, pos);
    if (!tag || tag.value < 8) return malformed;
    pos = tag.next;
    const field = Math.floor(tag.value / 8);
    switch (tag.value % 8) {
      case 0: {
        const v = readVarint(buf, pos);
        if (!v) return malformed;
        pos = v.next;
        break;
      }
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        const len = readVarint(buf, pos);
        if (!len || len.next + len.value > buf.length) return malformed;
        if (field === 1) {
          if (len.value > maxChars * 3) return tooLong;
          service = buf.toString('utf8', len.next, len.next + len.value);
          if (service.length > maxChars) return tooLong;
        }
        pos = len.next + len.value;
        break;
      }
      default:
        return malformed;
    }
    if (pos > buf.length) return malformed;
  }
  return { service };
}
