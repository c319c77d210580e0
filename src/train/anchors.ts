// Published quality figures on MovieLens 100K for the evaluation protocols recserve reproduces
// (src/train/protocols.ts). They are only comparable on that data set under the same protocol, so
// a report shows them beside a metric only for a named protocol, and says whether the data looked
// like MovieLens 100K.

export interface Anchor {
  model: string;
  value: number;
}

export interface ProtocolAnchors {
  source: string;
  metrics: Record<string, Anchor[]>;
}

const SURPRISE = 'Surprise README benchmark table (github.com/NicolasHug/Surprise), KFold(random_state=0), default parameters';
const MSR = 'Microsoft Recommenders README algorithm comparison (github.com/recommenders-team/recommenders), per-item stratified 75/25 split seed 42, k=10';
const LIGHTFM = 'LightFM MovieLens example (github.com/lyst/lightfm examples/movielens), ua.base/ua.test, 10 components, 10 epochs';

/** Keyed by the `evaluate --protocol` name, then by metric name as the evaluation reports it. */
export const PUBLISHED_ANCHORS: Record<string, ProtocolAnchors> = {
  surprise: {
    source: SURPRISE,
    metrics: {
      rmse: [
        { model: 'Surprise SVD', value: 0.934 },
        { model: 'Surprise SVD++', value: 0.919 },
        { model: 'Surprise k-NN Baseline', value: 0.931 },
        { model: 'Surprise BaselineOnly', value: 0.944 },
      ],
      mae: [
        { model: 'Surprise SVD', value: 0.737 },
        { model: 'Surprise SVD++', value: 0.721 },
        { model: 'Surprise BaselineOnly', value: 0.748 },
      ],
    },
  },
  msr: {
    source: MSR,
    metrics: {
      'ndcg@10': [
        { model: 'BiVAE', value: 0.475 },
        { model: 'BPR (cornac)', value: 0.442 },
        { model: 'LightGCN', value: 0.42 },
        { model: 'NCF', value: 0.396 },
        { model: 'SAR', value: 0.382 },
        { model: 'embdotbias (rating-trained)', value: 0.1178 },
        { model: 'Surprise SVD (rating-trained)', value: 0.0959 },
      ],
      'precision@10': [
        { model: 'BiVAE', value: 0.412 },
        { model: 'BPR (cornac)', value: 0.388 },
        { model: 'LightGCN', value: 0.38 },
        { model: 'SAR', value: 0.331 },
      ],
      'recall@10': [
        { model: 'BiVAE', value: 0.219 },
        { model: 'BPR (cornac)', value: 0.213 },
        { model: 'SAR', value: 0.176 },
      ],
      map: [
        { model: 'BiVAE', value: 0.146 },
        { model: 'BPR (cornac)', value: 0.132 },
        { model: 'SAR', value: 0.111 },
      ],
      rmse: [
        { model: 'Surprise SVD', value: 0.9387 },
        { model: 'Spark ALS', value: 0.965 },
        { model: 'embdotbias', value: 0.9928 },
      ],
    },
  },
  lightfm: {
    source: LIGHTFM,
    metrics: {
      'precision@10': [
        { model: 'LightFM WARP', value: 0.11 },
        { model: 'LightFM BPR', value: 0.1 },
      ],
      auc: [
        { model: 'LightFM WARP', value: 0.9 },
        { model: 'LightFM BPR', value: 0.86 },
      ],
    },
  },
};

/** MovieLens 100K's size: the anchors compare only with a run on that data. */
export function looksLikeMl100k(d: { users: number; items: number; interactions: number }): boolean {
  return d.users === 943 && d.items === 1682 && d.interactions === 100_000;
}
