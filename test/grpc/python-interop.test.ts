// Interop with Google's protobuf and gRPC (Python, C++ backend): the client builds its message classes
// only from the descriptors recserve serves over reflection, which Google's DescriptorPool validates
// strictly, then calls recserve and prints proto3 JSON (json_format). Skipped where /usr/bin/python3 has
// no grpcio/protobuf (Debian: python3-grpcio, python3-protobuf).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PYTHON, runPythonCalls } from '../helpers/python.js';
import { postJson, startTestServer, type TestServer } from '../helpers/server.js';
import { reflect, reflectionClient } from '../helpers/grpc-client.js';

const hasPython = spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf.json_format'], { stdio: 'ignore' }).status === 0;

const SCRIPT = String.raw`
import base64, json, sys
import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

files = [descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(b)) for b in json.load(open(sys.argv[1]))]
by_name = {f.name: f for f in files}
pool, added = descriptor_pool.DescriptorPool(), set()
def add(f):
    if f.name in added: return
    for d in f.dependency: add(by_name[d])
    pool.Add(f); added.add(f.name)
for f in files: add(f)
factory = message_factory.MessageFactory(pool)
cls = lambda n: factory.GetPrototype(pool.FindMessageTypeByName(n))
SM, FB = cls('seldon.protos.SeldonMessage'), cls('seldon.protos.Feedback')
MD, EMPTY = cls('seldon.protos.SeldonModelMetadata'), cls('google.protobuf.Empty')
channel = grpc.insecure_channel(sys.argv[2])

def call(path, req_cls, res_cls, body):
    stub = channel.unary_unary(path, request_serializer=req_cls.SerializeToString, response_deserializer=res_cls.FromString)
    try:
        res = stub(json_format.Parse(json.dumps(body), req_cls()), timeout=10)
        return {"ok": True, "response": json_format.MessageToDict(res)}
    except grpc.RpcError as e:
        return {"ok": False, "code": e.code().name, "details": e.details()}

first_puid = None
for name, path, req, res, body in json.load(open(sys.argv[3])):
    body = json.loads(json.dumps(body).replace("$PUID", first_puid or ""))
    r = call(path, {"SM": SM, "FB": FB, "EMPTY": EMPTY}[req], {"SM": SM, "MD": MD}[res], body)
    if r["ok"] and first_puid is None: first_puid = r["response"]["meta"]["puid"]
    print(json.dumps({"name": name, **r}))
`;

const CALLS: [string, string, string, string, unknown][] = [
  ['jsonData', '/seldon.protos.Model/Predict', 'SM', 'SM', { jsonData: { user_id: '196', k: 3 } }],
  ['tensor pairs', '/seldon.protos.Model/Predict', 'SM', 'SM', { data: { tensor: { shape: [2, 2], values: [196, 5, 186, 7] } } }],
  ['ndarray', '/seldon.protos.Seldon/Predict', 'SM', 'SM', { data: { names: ['user_id'], ndarray: [['196']] }, meta: { tags: { k: 2 } } }],
  ['tftensor', '/seldon.protos.Model/Predict', 'SM', 'SM', { data: { tftensor: { dtype: 'DT_FLOAT', tensorShape: { dim: [{ size: '1' }, { size: '2' }] }, floatVal: [1, 2] } } }],
  // Feedback on the first prediction, named by its puid.
  ['feedback', '/seldon.protos.Model/SendFeedback', 'FB', 'SM', { response: { meta: { puid: '$PUID' } }, reward: 0.3 }],
  ['metadata', '/seldon.protos.Model/Metadata', 'EMPTY', 'MD', {}],
];

describe.skipIf(!hasPython)('interop with Google protobuf + grpcio (Python)', () => {
  let ts: TestServer;
  let dir: string;
  beforeAll(async () => {
    ts = await startTestServer();
    dir = mkdtempSync(path.join(os.tmpdir(), 'recserve-py-'));
  });
  afterAll(async () => {
    await ts?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('builds the protocol from reflection alone and gets the REST answers', async () => {
    const address = `127.0.0.1:${ts.server.ports.grpc}`;
    const rc = reflectionClient(address);
    const fd = await reflect(rc, { file_containing_symbol: 'seldon.protos.Model' });
    rc.close();
    // REST answers first: the Python run ends with feedback, which folds user 196 in and changes their list.
    const rest = await postJson(`${ts.url}/api/v1.0/predictions`, { jsonData: { user_id: '196', k: 3 } });
    const restPairs = await postJson(`${ts.url}/api/v1.0/predictions`, { data: { tensor: { shape: [2, 2], values: [196, 5, 186, 7] } } });
    writeFileSync(path.join(dir, 'descriptors.json'), JSON.stringify(fd.file_descriptor_response.file_descriptor_proto.map((b: number[]) => Buffer.from(b).toString('base64'))));
    writeFileSync(path.join(dir, 'calls.json'), JSON.stringify(CALLS));
    writeFileSync(path.join(dir, 'client.py'), SCRIPT);
    const results = await runPythonCalls([path.join(dir, 'client.py'), path.join(dir, 'descriptors.json'), address, path.join(dir, 'calls.json')]);

    expect(results.jsonData).toMatchObject({ ok: true });
    expect(results.jsonData.response.jsonData).toEqual(rest.body.jsonData);

    expect(results['tensor pairs'].response.data).toEqual(restPairs.body.data);

    expect(results.ndarray.response.data.names).toEqual(['user_id', 'item_id', 'score', 'rank']);
    expect(results.ndarray.response.meta.tags).toMatchObject({ k: 2, model_name: 'demo-movies' });
    expect(results.tftensor).toEqual({ name: 'tftensor', ok: false, code: 'INVALID_ARGUMENT', details: 'data.tftensor is not supported; send data.ndarray or data.tensor' });
    expect(results.feedback, JSON.stringify(results.feedback)).toMatchObject({ ok: true, response: { data: { ndarray: [] } } });

    const restMd = await (await fetch(`${ts.url}/api/v1.0/metadata`)).json();
    expect(results.metadata.response).toEqual(restMd);
  });
});
