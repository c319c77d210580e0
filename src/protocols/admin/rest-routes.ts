// Admin endpoints (operationIds in openapi.yaml under /admin/…): list versions, reload (load a version
// beside the serving one, warm, swap), rollback (swap the previous version back), retrain (train on
// base data + stored feedback, publish if not worse on a holdout, swap it in). Off unless
// RECSERVE_ADMIN_TOKEN is set (404); then `Authorization: Bearer <token>` is required (401 without it,
// 403 with another token). Errors use Seldon's body.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Config } from '../../config/index.js';
import { badData, RecserveError, seldonErrorBody } from '../../errors.js';
import { RecordError } from '../../feedback/retrain-coordination.js';
import { RetrainBusyError, type FeedbackRuntime } from '../../feedback/runtime.js';
import { ModelNotFoundError, ModelRefusedError, NoPreviousVersionError, type ModelRegistry } from '../../model/registry.js';
import type { Recommender } from '../../model/recommender.js';
import type { Logger } from '../../telemetry/logger.js';
import type { Handler } from '../seldon-v1/rest-routes.js';

export interface AdminDeps {
  config: Config;
  registry: ModelRegistry;
  feedback: FeedbackRuntime;
  log: Logger;
}

export function adminHandlers({ config, registry, feedback, log }: AdminDeps): Record<string, Handler> {
  const guard =
    (h: Handler): Handler =>
    async (req, res) => {
      const token = config.adminToken;
      if (!token) {
        send(res, 404, 'MICROSERVICE_NOT_FOUND', 'admin endpoints are off: set RECSERVE_ADMIN_TOKEN to enable them');
        return;
      }
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.get('authorization') ?? '');
      if (!m) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="recserve-admin"');
        send(res, 401, 'MICROSERVICE_UNAUTHORIZED', 'admin endpoints need the header Authorization: Bearer <RECSERVE_ADMIN_TOKEN>');
        return;
      }
      if (!sameSecret(m[1], token)) {
        log.warn({ path: req.path }, 'admin call with a wrong token');
        send(res, 403, 'MICROSERVICE_FORBIDDEN', 'the bearer token is not the admin token');
        return;
      }
      await h(req, res);
    };

  const state = () => ({
    active: describe(registry.current),
    previous: describe(registry.previousModel),
    swaps: registry.swaps,
  });

  const coordination = feedback.coordination;

  /** The shared record of the serving version (PostgreSQL), so every replica answers the same. */
  const shared = async () => {
    if (!coordination) return {};
    const serving = await coordination.serving().catch((e) => {
      log.warn({ err: (e as Error).message }, 'admin: the shared store is unreachable; the serving version is this replica’s');
      return undefined;
    });
    return { replica: coordination.replica, serving: serving === undefined ? 'unavailable' : serving };
  };

  /**
   * A swap through the admin API: on PostgreSQL also recorded for every replica to follow. When the swap
   * stands here but the record failed, 503 says so (the record is retried in the background).
   */
  const swap = async (reason: string, fn: () => Promise<Recommender>, res: Response): Promise<boolean> => {
    if (!coordination) {
      await fn();
      return true;
    }
    try {
      await coordination.swapAndRecord(reason, fn);
      return true;
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      send(res, 503, 'MICROSERVICE_UNAVAILABLE', e.message);
      return false;
    }
  };

  const versions: Handler = async (_req, res) => {
    res.json({ ...state(), ...(await shared()), versions: registry.listVersions() });
  };

  const reload: Handler = async (req, res) => {
    const body = readBody(req);
    const version = body.version;
    if (version !== undefined && (typeof version !== 'string' || version.length === 0)) throw badData('version must be a non-empty string');
    const target = (version as string | undefined) ?? registry.newestVersion() ?? 'base';
    try {
      const dir = registry.versionDir(target);
      if (!(await swap(`reload ${target}`, () => registry.load(dir), res))) return;
    } catch (e) {
      if (e instanceof ModelNotFoundError) throw new RecserveError('not_found', e.message);
      if (e instanceof ModelRefusedError) {
        throw badData(`${e.message}; still serving ${registry.current?.version ?? 'nothing'}`);
      }
      throw e;
    }
    res.json({ ...state(), ...(await shared()) });
  };

  const rollback: Handler = async (_req, res) => {
    try {
      if (!(await swap('rollback', () => registry.rollback(), res))) return;
    } catch (e) {
      if (e instanceof NoPreviousVersionError) {
        send(res, 409, 'MICROSERVICE_CONFLICT', `${e.message}; serving ${registry.current?.version ?? 'nothing'}`);
        return;
      }
      throw e;
    }
    res.json({ ...state(), ...(await shared()) });
  };

  const retrain: Handler = async (req, res) => {
    const body = readBody(req);
    if (body.wait !== undefined && typeof body.wait !== 'boolean') throw badData('wait must be true or false');
    let run;
    try {
      run = await feedback.retrainer.start('admin');
    } catch (e) {
      if (e instanceof RetrainBusyError) {
        send(res, 409, 'MICROSERVICE_CONFLICT', `${e.message}; GET /admin/retrain shows its progress`);
        return;
      }
      // The shared store could not be asked for the retrain lock: nothing started.
      log.error({ err: (e as Error).message }, 'admin retrain: could not take the retrain lock');
      send(res, 503, 'MICROSERVICE_UNAVAILABLE', 'the shared store did not answer for the retrain lock; no retrain started');
      return;
    }
    if (body.wait === false) {
      res.status(202).json({ status: 'running', started_at: run.startedAt, ...(coordination ? { replica: coordination.replica } : {}) });
      return;
    }
    const outcome = await run.done;
    res.json({ ...outcome, ...state(), ...(coordination ? { replica: coordination.replica } : {}) });
  };

  const retrainStatus: Handler = async (_req, res) => {
    const status = await feedback.retrainer.status();
    res.json({ ...status, ...state(), ...(await shared()) });
  };

  return {
    adminVersions: guard(versions),
    adminReload: guard(reload),
    adminRollback: guard(rollback),
    adminRetrain: guard(retrain),
    adminRetrainStatus: guard(retrainStatus),
  };
}

function describe(rec: Recommender | null) {
  return rec ? { name: rec.name, version: rec.version, dir: rec.artifact.dir } : null;
}

function send(res: Response, status: number, reason: string, info: string): void {
  res.status(status).json(seldonErrorBody(reason, info));
}

/** Compares digests in constant time (lengths never leak). */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function readBody(req: Request): Record<string, unknown> {
  const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8').trim() : '';
  if (raw.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw badData(`the body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badData('the body must be a JSON object');
  return v as Record<string, unknown>;
}
