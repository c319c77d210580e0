// The V2 model repository extension over REST: POST /v2/repository/index, and
// /v2/repository/models/{name}/load and /unload, on the core's ModelRepository. Errors leave through
// the /v2 error writer ({"error": "…"}).
import type { Request, Response } from 'express';
import type { Limits } from '../../config/limits.js';
import type { ModelRepository } from '../../core/repository.js';
import { badData } from '../../errors.js';
import type { Handler } from '../seldon-v1/rest-routes.js';
import { readJsonObject } from '../http.js';

export function v2RepositoryHandlers({ repository, limits }: { repository: ModelRepository; limits: Limits }): Record<string, Handler> {
  const name = (req: Request): string => String(req.params.name ?? '');
  return {
    v2RepositoryIndex: async (req: Request, res: Response) => {
      const body = readJsonObject(req, limits, 'index request', {});
      if (body.ready !== undefined && typeof body.ready !== 'boolean') throw badData('ready must be true or false');
      if (body.repository_name !== undefined && body.repository_name !== '') throw badData('this server has one repository: leave repository_name out');
      res.json(repository.index(body.ready === true));
    },
    v2RepositoryLoad: async (req: Request, res: Response) => {
      readJsonObject(req, limits, 'load request', {}); // parameters (config, file:…) are not taken: models come from the models root
      await repository.load(name(req));
      res.json({ name: name(req), load: true });
    },
    v2RepositoryUnload: async (req: Request, res: Response) => {
      readJsonObject(req, limits, 'unload request', {});
      await repository.unload(name(req));
      res.json({ name: name(req), unload: true });
    },
  };
}
