// Admin endpoints (operationIds in openapi.yaml under /admin/…): list versions, reload (load a version
// beside the serving one, warm, swap), rollback (swap the previous version back), retrain (train on
// base data + stored feedback, publish if not worse on a holdout, swap it in). Off unless
// RECSERVE_ADMIN_TOKEN is set (404); then `Authorization: Bearer <token>` is required (401 without it,
// 403 with another token). Errors use Seldon's body.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../../config/index.js';
import type { VersionControl } from '../../core/control.js';
import { badData, RecserveError } from '../../errors.js';
import type { Logger } from '../../telemetry/logger.js';
import { readJsonObject } from '../http.js';
import type { Handler } from '../seldon-v1/rest-routes.js';

export interface AdminDeps {
  config: Config;
  control: VersionControl;
  log: Logger;
}

export function adminHandlers({ config, control, log }: AdminDeps): Record<string, Handler> {
  const guard =
    (h: Handler): Handler =>
    async (req, res) => {
      const token = config.adminToken;
      if (!token) throw new RecserveError('not_found', 'admin endpoints are off: set RECSERVE_ADMIN_TOKEN to enable them');
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.get('authorization') ?? '');
      if (!m) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="recserve-admin"');
        throw new RecserveError('unauthorized', 'admin endpoints need the header Authorization: Bearer <RECSERVE_ADMIN_TOKEN>');
      }
      if (!sameSecret(m[1], token)) {
        log.warn({ path: req.path }, 'admin call with a wrong token');
        throw new RecserveError('forbidden', 'the bearer token is not the admin token');
      }
      await h(req, res);
    };
  const replica = () => (control.replica === null ? {} : { replica: control.replica });

  const versions: Handler = async (_req, res) => {
    res.json({ ...control.state(), ...(await control.shared()), versions: control.versions() });
  };

  const reload: Handler = async (req, res) => {
    const body = readJsonObject(req, config.limits, 'body', {});
    const version = body.version;
    if (version !== undefined && (typeof version !== 'string' || version.length === 0)) throw badData('version must be a non-empty string');
    await control.reload(version as string | undefined);
    res.json({ ...control.state(), ...(await control.shared()) });
  };

  const rollback: Handler = async (_req, res) => {
    await control.rollback();
    res.json({ ...control.state(), ...(await control.shared()) });
  };

  const retrain: Handler = async (req, res) => {
    const body = readJsonObject(req, config.limits, 'body', {});
    if (body.wait !== undefined && typeof body.wait !== 'boolean') throw badData('wait must be true or false');
    const run = await control.retrain('admin');
    if (body.wait === false) {
      res.status(202).json({ status: 'running', started_at: run.startedAt, ...replica() });
      return;
    }
    const outcome = await run.done;
    res.json({ ...outcome, ...control.state(), ...replica() });
  };

  const retrainStatus: Handler = async (_req, res) => {
    const status = await control.retrainer.status();
    res.json({ ...status, ...control.state(), ...(await control.shared()) });
  };

  return {
    adminVersions: guard(versions),
    adminReload: guard(reload),
    adminRollback: guard(rollback),
    adminRetrain: guard(retrain),
    adminRetrainStatus: guard(retrainStatus),
  };
}

/** Compares digests in constant time (lengths never leak). */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
