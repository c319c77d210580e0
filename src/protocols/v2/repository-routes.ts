// The V2 model repository extension over REST: POST /v2/repository/index, and
// /v2/repository/models/{name}/load and /unload, on the core's ModelRepository. Errors leave through
// the /v2 error writer ({"error": "…"}).
import type { Request, Response } from 'express';
import type { Limits } from '../../config/limits.js';
import type { ModelRepository } from '../../core/repository.js';
import { badData } from '../../errors.js';
import { parseJsonText } from '../json.js';
import type { Handler } from '../seldon-v1/rest-routes.js';

export function v2RepositoryHandlers({ repository, limits }: { repository: ModelRepository; limits: Limits }): Record<string, Handler> {
  const name = (req: Request): string => String(req.params.name ?? '');
  return {
    v2RepositoryIndex: async (req: Request, res: Response) => {
      const body = readObject(req, limits, 'the index request');
      if (body.ready !== undefined && typeof body.ready !== 'boolean') throw badData('ready must be true or false');
      if (body.repository_name !== undefined && body.repository_name !== '') throw badData('this server has one repository: leave repository_name out');
      res.json(repository.index(body.ready === true));
    },
    v2RepositoryLoad: async (req: Request, res: Response) => {
      readObject(req, limits, 'the load request'); // parameters (config, file:…) are not taken: models come from the models root
      await repository.load(name(req));
      res.json({ name: name(req), load: true });
    },
    v2RepositoryUnload: async (req: Request, res: Response) => {
      readObject(req, limits, 'the unload request');
      await repository.unload(name(req));
      res.json({ name: name(req), unload: true });
    },
  };
}

/** An empty body or a JSON object (depth-checked like every body). */
function readObject(req: Request, limits: Limits, what: string): Record<string, unknown> {
  const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8').trim() : '';
  if (text.length === 0) return {};
  const v = parseJsonText(text, what, limits.maxJsonDepth, '', limits.maxJsonValues);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badData(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}
