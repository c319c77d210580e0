// What the core speaks, in no protocol's shape: a prediction asked and answered, a feedback, a call's
// context. Each protocol module (protocols/seldon-v1, protocols/v2) decodes its messages into these.
import type { Recommendation, Recommender, RecommendRequest, Restriction, SimilarItems, SimilarRequest } from '../model/recommender.js';

export type PredictInput =
  | { op: 'recommend'; request: RecommendRequest }
  | { op: 'similar'; request: SimilarRequest }
  | { op: 'pairs'; pairs: [string, string][] };

export type PredictOutput =
  | { op: 'recommend'; recommendations: Recommendation[]; restriction?: Restriction | null; /** Ranks before the page (absent: 0). */ offset?: number }
  | { op: 'similar'; similar: SimilarItems; restriction?: Restriction | null }
  | { op: 'pairs'; scores: number[] };

export type Transport = 'rest' | 'grpc';
export type Protocol = 'seldon-v1' | 'v2';

export interface CallContext {
  transport: Transport;
  /** Which protocol module decoded the call (metrics are labelled by it). */
  protocol?: Protocol;
  /** A prediction id from outside the body (the executor's Seldon-Puid header). */
  puid?: string;
  /** Aborted when the caller goes away or its deadline passes. */
  signal?: AbortSignal;
}

/** What a prediction was: kept so feedback can refer to it by its id (Seldon's puid, V2's request id). */
export interface PredictionRecord {
  puid: string;
  modelVersion: string;
  input: PredictInput;
  output: PredictOutput;
}

/** What one prediction showed, per user. */
export interface ShownList {
  userId: string;
  strategy: 'cold_start' | 'personalized' | 'pairs';
  items: string[];
  /** Items of the list that came from exploration slots. */
  explored: Set<string> | null;
}

/**
 * One feedback in no protocol's shape. What the caller claims was shown is read only when the server
 * does not remember the prediction, and read lazily: a protocol's payload decoding (and its errors)
 * happens in the same order as before the server looked in its memory.
 */
export interface FeedbackEvent {
  /** In [0, 1]. */
  reward: number;
  /** Ids that may name the prediction, in order of preference, each with where it came from (for errors). */
  predictionIds: { id: string; where: string }[];
  /** What the caller says was shown (its request and response), or null when it says nothing. */
  shown(model: Recommender, maxRows: number): ShownList[] | null;
  /** Items the user chose (the truth), or null when the feedback names none. */
  chosen(): string[] | null;
  /** The model version the caller says answered, when it says (used only with `shown`). */
  claimedVersion?: string;
}

/** Flat values a learner adds to a feedback's answer (counts, flags, a note). */
export type FeedbackTags = Record<string, string | number | boolean | string[]>;

/** Learns from predictions and feedback (interaction store, bandit, fold-in); built by the composition root. */
export interface Learner {
  remember?(record: PredictionRecord, model: Recommender): void;
  /** Stores and learns from one feedback; returns tags for the answer. Throws to refuse it. */
  learn(event: FeedbackEvent, model: Recommender, ctx: CallContext): Promise<FeedbackTags | void>;
}
