// FileDescriptorProtos for server reflection, one per .proto file with its real name, fully-qualified type
// names and its dependency list — what protoc would produce. @grpc/proto-loader's own descriptors merge
// each package into one synthetic file with an empty dependency list (grpc/grpc-node#2595), which
// descriptor-linking clients such as grpcurl cannot resolve ("unresolvable reference").
import { existsSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import type * as protoLoader from '@grpc/proto-loader';

/** protobufjs keeps no file name for its bundled well-known types; these are their canonical files. */
const WKT_FILES: Record<string, string> = {
  '.google.protobuf.Any': 'google/protobuf/any.proto',
  '.google.protobuf.Struct': 'google/protobuf/struct.proto',
  '.google.protobuf.Value': 'google/protobuf/struct.proto',
  '.google.protobuf.ListValue': 'google/protobuf/struct.proto',
  '.google.protobuf.NullValue': 'google/protobuf/struct.proto',
  '.google.protobuf.Empty': 'google/protobuf/empty.proto',
};

const SCALAR: Record<string, number> = {
  double: 1, float: 2, int64: 3, uint64: 4, int32: 5, fixed64: 6, fixed32: 7, bool: 8, string: 9,
  bytes: 12, uint32: 13, sfixed32: 15, sfixed64: 16, sint32: 17, sint64: 18,
};
const LABEL_OPTIONAL = 1;
const LABEL_REPEATED = 3;
const TYPE_MESSAGE = 11;
const TYPE_ENUM = 14;

interface FileEntry {
  name: string;
  pkg: string;
  messageType: object[];
  enumType: object[];
  service: object[];
  dependency: Set<string>;
}

/**
 * Loads the given .proto files (names relative to one of includeDirs) and returns a package definition
 * that @grpc/reflection's ReflectionService accepts: only its fileDescriptorProtos are read.
 */
export function reflectionPackage(files: string[], includeDirs: string[]): protoLoader.PackageDefinition {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (target.startsWith('google/protobuf/') || path.isAbsolute(target)) return target;
    return includeDirs.map((d) => path.join(d, target)).find((p) => existsSync(p)) ?? target;
  };
  root.loadSync(files, { keepCase: true }); // descriptors carry the declared field names
  root.resolveAll();

  const relName = (abs: string) => {
    for (const d of includeDirs) {
      const rel = path.relative(d, abs);
      if (!rel.startsWith('..') && !path.isAbsolute(rel)) return rel.split(path.sep).join('/');
    }
    return abs;
  };
  const fileOf = (obj: protobuf.ReflectionObject): string => {
    const wkt = WKT_FILES[obj.fullName];
    if (wkt) return wkt;
    for (let o: protobuf.ReflectionObject | null = obj; o; o = o.parent) if (o.filename) return relName(o.filename);
    throw new Error(`no .proto file known for ${obj.fullName}`);
  };

  const byFile = new Map<string, FileEntry>();
  const entry = (obj: protobuf.ReflectionObject): FileEntry => {
    const name = fileOf(obj);
    let e = byFile.get(name);
    if (!e) byFile.set(name, (e = { name, pkg: obj.parent!.fullName.slice(1), messageType: [], enumType: [], service: [], dependency: new Set() }));
    return e;
  };
  const needs = (from: FileEntry, target: protobuf.ReflectionObject) => {
    const f = fileOf(target);
    if (f !== from.name) from.dependency.add(f);
  };

  const walk = (ns: protobuf.NamespaceBase) => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Type) {
        const e = entry(obj);
        e.messageType.push(messageDescriptor(obj, e, needs));
      } else if (obj instanceof protobuf.Enum) {
        entry(obj).enumType.push(enumDescriptor(obj));
      } else if (obj instanceof protobuf.Service) {
        const e = entry(obj);
        e.service.push({
          name: obj.name,
          method: obj.methodsArray.map((m) => {
            m.resolve();
            needs(e, m.resolvedRequestType!);
            needs(e, m.resolvedResponseType!);
            return {
              name: m.name,
              inputType: m.resolvedRequestType!.fullName,
              outputType: m.resolvedResponseType!.fullName,
              ...(m.requestStream ? { clientStreaming: true } : {}),
              ...(m.responseStream ? { serverStreaming: true } : {}),
            };
          }),
        });
      } else if (obj instanceof protobuf.Namespace) {
        walk(obj);
      }
    }
  };
  walk(root);

  const FileDescriptorProto = (descriptor as unknown as { FileDescriptorProto: protobuf.Type }).FileDescriptorProto;
  const encoded = [...byFile.values()].map((e) =>
    Buffer.from(
      FileDescriptorProto.encode(
        FileDescriptorProto.fromObject({
          name: e.name,
          package: e.pkg,
          dependency: [...e.dependency].sort(),
          messageType: e.messageType,
          enumType: e.enumType,
          service: e.service,
          syntax: 'proto3',
        }),
      ).finish(),
    ),
  );
  return { 'recserve.reflection': { fileDescriptorProtos: encoded } } as unknown as protoLoader.PackageDefinition;
}

function messageDescriptor(t: protobuf.Type, file: FileEntry, needs: (from: FileEntry, target: protobuf.ReflectionObject) => void): object {
  const wkt = t.fullName.startsWith('.google.protobuf.');
  const nestedType: object[] = [];
  const enumType: object[] = [];
  const fieldName = (n: string) => (wkt ? snake(n) : n); // protobufjs' bundled WKTs are camelCased
  const typeRef = (rt: protobuf.Type | protobuf.Enum | null, scalar: string) => {
    if (rt instanceof protobuf.Type) {
      needs(file, rt);
      return { type: TYPE_MESSAGE, typeName: rt.fullName };
    }
    if (rt instanceof protobuf.Enum) {
      needs(file, rt);
      return { type: TYPE_ENUM, typeName: rt.fullName };
    }
    const type = SCALAR[scalar];
    if (!type) throw new Error(`${t.fullName}: unknown scalar type ${scalar}`);
    return { type };
  };
  const field = t.fieldsArray.map((f) => {
    f.resolve();
    const name = fieldName(f.name);
    const d: Record<string, unknown> = { name, number: f.id };
    if (f.map) {
      const entryName = `${pascal(name)}Entry`;
      const mf = f as unknown as protobuf.MapField;
      nestedType.push({
        name: entryName,
        field: [
          { name: 'key', number: 1, label: LABEL_OPTIONAL, ...typeRef(null, mf.keyType) },
          { name: 'value', number: 2, label: LABEL_OPTIONAL, ...typeRef(mf.resolvedType, mf.type) },
        ],
        options: { mapEntry: true },
      });
      Object.assign(d, { label: LABEL_REPEATED, type: TYPE_MESSAGE, typeName: `${t.fullName}.${entryName}` });
    } else {
      Object.assign(d, { label: f.repeated ? LABEL_REPEATED : LABEL_OPTIONAL, ...typeRef(f.resolvedType, f.type) });
      if (f.repeated && f.options?.packed === false) d.options = { packed: false };
    }
    if (f.partOf) d.oneofIndex = t.oneofsArray.indexOf(f.partOf);
    return d;
  });
  for (const n of t.nestedArray) {
    if (n instanceof protobuf.Type) nestedType.push(messageDescriptor(n, file, needs));
    else if (n instanceof protobuf.Enum) enumType.push(enumDescriptor(n));
  }
  const reservedRange: object[] = [];
  const reservedName: string[] = [];
  for (const r of t.reserved ?? []) {
    if (typeof r === 'string') reservedName.push(r);
    else reservedRange.push({ start: r[0], end: r[1] + 1 }); // descriptor ranges are end-exclusive
  }
  return {
    name: t.name,
    field,
    nestedType,
    enumType,
    oneofDecl: t.oneofsArray.map((o) => ({ name: wkt ? snake(o.name) : o.name })),
    ...(reservedRange.length ? { reservedRange } : {}),
    ...(reservedName.length ? { reservedName } : {}),
  };
}

function enumDescriptor(e: protobuf.Enum): object {
  return { name: e.name, value: Object.entries(e.values).map(([name, number]) => ({ name, number })) };
}

function snake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function pascal(s: string): string {
  return s.replace(/(?:^|_)([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}
