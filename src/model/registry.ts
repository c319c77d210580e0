// Holds the model version that answers requests. A version is loaded and warmed beside the current
// one and only then swapped in, so a request always finds a ready model.
import { loadArtifact, type Artifact } from './artifact.js';
import { OrtScorer } from './ort-scorer.js';
import { Recommender } from './recommender.js';
import type { Scorer } from './scorer.js';

export type ScorerFactory = (artifact: Artifact) => Promise<Scorer>;

export const inProcessScorer: ScorerFactory = (a) => OrtScorer.create(a.onnx, a.signature, a.itemIds.length);

export class ModelRegistry {
  private active: Recommender | null = null;

  constructor(private readonly makeScorer: ScorerFactory = inProcessScorer) {}

  /** The serving recommender, or null before the first load has been warmed. */
  get current(): Recommender | null {
    return this.active;
  }

  /** Loads dir, warms it with one real inference, then makes it current; the old version is closed. */
  async load(dir: string): Promise<Recommender> {
    const artifact = await loadArtifact(dir);
    const scorer = await this.makeScorer(artifact);
    const rec = new Recommender(artifact, scorer);
    try {
      await warmUp(rec);
    } catch (e) {
      await scorer.close().catch(() => undefined);
      throw new Error(`model ${artifact.name} ${artifact.version} failed its warm-up inference: ${(e as Error).message}`);
    }
    const old = this.active;
    this.active = rec;
    // In-flight requests hold their own reference; give them time before releasing the old session.
    if (old) setTimeout(() => void old.scorer.close().catch(() => undefined), 5_000).unref();
    return rec;
  }

  async close(): Promise<void> {
    await this.active?.scorer.close();
    this.active = null;
  }
}

async function warmUp(rec: Recommender): Promise<void> {
  const user = rec.artifact.userIds[0];
  if (user === undefined) return;
  await rec.recommend({ users: [user], k: 1, excludeSeen: false, filter: null });
}
