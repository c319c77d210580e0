// Moved to src/protocols/seldon-v1/wire.ts (protobuf encoding belongs to the protocol, not the transport).
// Kept only for test/grpc/wire.test.ts and bench/proto-encode.ts until their imports point there.
export { Refused, writeJson } from '../../protocols/seldon-v1/wire.js';
