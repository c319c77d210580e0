// Which model a V2 call names and whether it can answer, for every V2 transport (REST routes and the
// gRPC servicer), so both wait, refuse and report readiness the same way.
import type { ModelHub } from '../../core/models.js';
import type { Readiness as CoreReadiness, RecommenderService } from '../../core/service.js';
import { quote, RecserveError } from '../../errors.js';
import type { Recommender } from '../../model/recommender.js';

/**
 * The model `name` names, once it serves (waiting, bounded, while the server's default model loads:
 * its name is known only then), at `version` when one is asked (empty or absent: the serving one).
 * NOT_FOUND for an unknown model or version, UNAVAILABLE when it does not come.
 */
export async function servingModel(models: ModelHub, name: string, version: string | undefined): Promise<{ service: RecommenderService; model: Recommender }> {
  let service = models.find(name);
  const first = models.default;
  if (!service && first && first.current === null) {
    await first.whenServing();
    service = models.find(name);
  }
  service ??= models.resolve(name); // NOT_FOUND naming what is served
  if (service.current === null) await service.whenServing();
  const model = service.model();
  checkVersion(name, model, version);
  return { service, model };
}

/** A version asked must be the one serving (a V2 client may not pick an older one). */
export function checkVersion(name: string, model: Recommender, version: string | undefined): void {
  if (version && version !== model.version) {
    throw new RecserveError('not_found', `model ${quote(name)} has no version ${quote(version)}; version ${quote(model.version)} serves`);
  }
}

/** Readiness as the core reports it, without the model (a V2 answer names the model itself). */
export type Readiness = Omit<CoreReadiness, 'model'>;

/**
 * A model's readiness now, never waiting; NOT_FOUND for a model that is not served (unless the default
 * model is still loading: it may be the one named, so it is not ready yet).
 */
export function modelReadiness(models: ModelHub, name: string, version: string | undefined): Readiness {
  let service = models.find(name);
  if (!service) {
    const first = models.default;
    if (first && first.current === null) return { ready: false, reason: first.readiness().reason ?? 'the model is loading' };
    service = models.resolve(name); // NOT_FOUND naming what is served
  }
  const r = service.readiness();
  if (!r.ready) return { ready: false, reason: `model ${quote(name)} is not ready: ${r.reason}` };
  checkVersion(name, service.model(), version);
  return { ready: true, reason: null };
}

/**
 * Ready when every served model is (the default one still loading is not); a server with no model at
 * all (Seldon Core 2 starts it so) is ready to be given one.
 */
export function serverReadiness(models: ModelHub): Readiness {
  const first = models.default;
  const waiting = [...(first && first.current === null ? [{ name: 'the default model', service: first }] : []), ...models.list()].find((m) => !m.service.isReady());
  return waiting ? { ready: false, reason: `${waiting.name} is not ready: ${waiting.service.readiness().reason}` } : { ready: true, reason: null };
}

/** Whether some model can answer a V2 call now (grpc.health.v1 for the V2 service). */
export function anyModelServing(models: ModelHub): boolean {
  return models.list().some((m) => m.service.isReady());
}
