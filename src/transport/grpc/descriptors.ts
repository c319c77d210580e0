// FileDescriptorProtos for server reflection, one per .proto file with its real name and dependency list,
// taken from the code generated from proto/ (src/gen): what protoc produced, so descriptor-linking clients
// such as grpcurl and Google's DescriptorPool resolve every reference. (@grpc/proto-loader's own
// descriptors merge each package into one synthetic file with no dependencies, grpc/grpc-node#2595.)
import { toBinary, type DescFile } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import type * as protoLoader from '@grpc/proto-loader';

/**
 * A package definition that @grpc/reflection's ReflectionService accepts (it reads only the
 * fileDescriptorProtos) for `files`, which must include every file they import.
 */
export function reflectionPackage(files: DescFile[]): protoLoader.PackageDefinition {
  const names = new Set(files.map((f) => f.proto.name));
  for (const f of files) {
    const missing = f.proto.dependency.filter((d) => !names.has(d));
    if (missing.length) throw new Error(`reflection for ${f.proto.name} needs ${missing.join(', ')} too`);
  }
  const fileDescriptorProtos = files.map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  return { 'recserve.reflection': { fileDescriptorProtos } } as unknown as protoLoader.PackageDefinition;
}
