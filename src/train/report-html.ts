// report.json rendered as one self-contained HTML page: inline CSS, inline SVG charts, no script and
// no external asset (a Content-Security-Policy forbids fetching any). Every string from the report is
// escaped; numbers are formatted here. writeReport puts both files beside the model.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPORT_HTML, REPORT_JSON, type EpochRow, type HistogramBin, type Report } from './report.js';

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function num(v: number | undefined | null, digits = 4): string {
  if (v === undefined || v === null || Number.isNaN(v)) return '—';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return Math.abs(v) >= 1000 ? v.toFixed(1) : v.toFixed(digits);
}

export interface Series {
  name: string;
  points: [number, number][];
  dashed?: boolean;
  /** Points only (a scatter), no connecting path. */
  noLine?: boolean;
}

const LEGEND_PER_ROW = 4;
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];
const W = 640;
const H = 300;
const M = { left: 64, right: 16, top: 34, bottom: 44 };

function ticks(lo: number, hi: number, n = 5): number[] {
  if (hi === lo) return [lo];
  const step = (hi - lo) / (n - 1);
  return Array.from({ length: n }, (_, j) => lo + j * step);
}

function tickLabel(v: number, span: number): string {
  if (span === 0) return num(v);
  const digits = Math.max(0, Math.min(6, 2 - Math.floor(Math.log10(span))));
  return v.toFixed(digits);
}

/** A line chart: one <path> per series (unless noLine) and one <circle> per point, each tagged data-series. */
export function lineChart(id: string, title: string, xLabel: string, series: Series[]): string {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return '';
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  let y0 = Math.min(...ys);
  let y1 = Math.max(...ys);
  const pad = (y1 - y0) * 0.05 || Math.abs(y1) * 0.05 || 1;
  y0 -= pad;
  y1 += pad;
  const px = (x: number) => M.left + (x1 === x0 ? (W - M.left - M.right) / 2 : ((x - x0) / (x1 - x0)) * (W - M.left - M.right));
  const py = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const parts: string[] = [];
  parts.push(`<text x="${W / 2}" y="18" class="title">${esc(title)}</text>`);
  parts.push(`<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" class="axis"/><line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" class="axis"/>`);
  for (const t of ticks(y0, y1)) parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" class="grid"/><text x="${M.left - 6}" y="${(py(t) + 4).toFixed(1)}" class="ytick">${esc(tickLabel(t, y1 - y0))}</text>`);
  const xt = x1 - x0 <= 10 ? Array.from({ length: x1 - x0 + 1 }, (_, j) => x0 + j) : ticks(x0, x1, 6).map(Math.round);
  for (const t of new Set(xt)) parts.push(`<text x="${px(t).toFixed(1)}" y="${H - M.bottom + 16}" class="xtick">${esc(t)}</text>`);
  parts.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 8}" class="xlabel">${esc(xLabel)}</text>`);
  series.forEach((s, j) => {
    const color = PALETTE[j % PALETTE.length];
    if (!s.noLine && s.points.length > 0) {
      const d = s.points.map((p, k) => `${k === 0 ? 'M' : 'L'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ');
      parts.push(`<path class="series" data-series="${esc(s.name)}" d="${d}" stroke="${color}"${s.dashed ? ' stroke-dasharray="5,4"' : ''}/>`);
    }
    for (const p of s.points) {
      parts.push(`<circle class="point" data-series="${esc(s.name)}" cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${s.name} @ ${p[0]}: ${num(p[1], 6)}`)}</title></circle>`);
    }
    // Four legend entries per row (a tune report draws up to eight trial curves), so none is clipped.
    const lx = M.left + 8 + (j % LEGEND_PER_ROW) * 150;
    const ly = M.top - 8 + Math.floor(j / LEGEND_PER_ROW) * 14;
    parts.push(`<rect x="${lx}" y="${ly}" width="10" height="10" fill="${color}"/><text x="${lx + 14}" y="${ly + 9}" class="legend">${esc(s.name)}</text>`);
  });
  return `<svg id="${esc(id)}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${parts.join('')}</svg>`;
}

/** A bar chart of histogram bins: one <rect class="bar"> per bin. */
export function barChart(id: string, title: string, bins: HistogramBin[]): string {
  if (bins.length === 0) return '';
  const max = Math.max(...bins.map((b) => b.count), 1);
  const bw = (W - M.left - M.right) / bins.length;
  const parts: string[] = [`<text x="${W / 2}" y="18" class="title">${esc(title)}</text>`];
  parts.push(`<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" class="axis"/>`);
  for (const t of ticks(0, max)) {
    const y = H - M.bottom - (t / max) * (H - M.top - M.bottom);
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" class="grid"/><text x="${M.left - 6}" y="${(y + 4).toFixed(1)}" class="ytick">${esc(Math.round(t))}</text>`);
  }
  const every = Math.ceil(bins.length / 10);
  bins.forEach((b, j) => {
    const h = (b.count / max) * (H - M.top - M.bottom);
    const x = M.left + j * bw;
    parts.push(`<rect class="bar" data-label="${esc(b.label)}" x="${(x + 1).toFixed(1)}" y="${(H - M.bottom - h).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${PALETTE[0]}"><title>${esc(`${b.label}: ${b.count}`)}</title></rect>`);
    if (j % every === 0) parts.push(`<text x="${(x + bw / 2).toFixed(1)}" y="${H - M.bottom + 16}" class="xtick">${esc(b.label)}</text>`);
  });
  return `<svg id="${esc(id)}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${parts.join('')}</svg>`;
}

function table(head: string[], rows: (string | number | undefined)[][], cls = ''): string {
  const cell = (v: string | number | undefined) => `<td${typeof v === 'number' ? ' class="n"' : ''}>${typeof v === 'number' ? esc(num(v)) : esc(v ?? '')}</td>`;
  return `<table${cls ? ` class="${esc(cls)}"` : ''}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody></table>`;
}

function keyValues(o: Record<string, unknown>): string {
  return table(['', ''], Object.entries(o).map(([k, v]) => [k, typeof v === 'number' ? v : typeof v === 'string' ? v : JSON.stringify(v)]), 'kv');
}

const RATING_METRICS = ['rmse', 'mae'];

/** Series of the per-epoch chart(s): training loss (and refit loss), and validation metrics. */
function epochSeries(epochs: EpochRow[], refit: EpochRow[] | undefined): { loss: Series[]; ranking: Series[] } {
  const loss: Series[] = [];
  if (epochs.length > 0) loss.push({ name: `train ${epochs[0].loss_name}`, points: epochs.filter((e) => Number.isFinite(e.loss)).map((e) => [e.epoch, e.loss]) });
  const ranking: Series[] = [];
  const names = [...new Set(epochs.flatMap((e) => Object.keys(e.validation ?? {})))];
  for (const n of names) {
    const s: Series = { name: `validation ${n}`, points: epochs.filter((e) => e.validation?.[n] !== undefined).map((e) => [e.epoch, e.validation![n]]) };
    if (RATING_METRICS.includes(n)) loss.push(s);
    else if (n.startsWith('ndcg@') || n.startsWith('recall@')) ranking.push(s);
  }
  if (refit && refit.length > 0) loss.push({ name: `refit ${refit[0].loss_name}`, points: refit.filter((e) => Number.isFinite(e.loss)).map((e) => [e.epoch, e.loss]), dashed: true });
  return { loss, ranking };
}

export function renderReportHtml(r: Report): string {
  const body: string[] = [];
  const what = r.model ? `${r.model.name} ${r.model.version}` : r.data?.source ?? '';
  body.push(`<h1>recserve ${esc(r.command)} — ${esc(r.algo)} <small>${esc(what)}</small></h1>`);
  body.push(`<p class="meta">created ${esc(r.created)}${r.model ? ` · model <code>${esc(r.model.file)}</code>` : ''}</p>`);
  body.push(`<section id="headline"><h2>Headline</h2><div class="cards">${Object.entries(r.headline)
    .map(([k, v]) => `<div class="card"><div class="k">${esc(k)}</div><div class="v">${esc(typeof v === 'number' ? num(v) : v)}</div></div>`)
    .join('')}</div></section>`);

  if (r.data) {
    const d = r.data;
    const summary: Record<string, unknown> = { source: d.source, interactions: d.interactions, users: d.users, items: d.items, sparsity: `${(d.sparsity * 100).toFixed(3)} %`, kind: d.explicit ? 'explicit ratings' : 'implicit events', 'rating range': d.rating_range ? `${d.rating_range[0]} – ${d.rating_range[1]}` : '—' };
    if (d.duplicates_merged !== undefined) summary['repeated rows merged'] = d.duplicates_merged;
    body.push(`<section id="data"><h2>Data</h2><div class="row">${keyValues(summary)}${barChart('chart-histogram', d.explicit ? 'Ratings' : 'Event weights', d.histogram)}</div></section>`);
  }

  if (r.epochs.length > 0) {
    const { loss, ranking } = epochSeries(r.epochs, r.refit?.epochs);
    const metricNames = [...new Set(r.epochs.flatMap((e) => Object.keys(e.validation ?? {})))];
    const head = ['epoch', r.epochs[0].loss_name, 's', ...metricNames.map((n) => `valid ${n}`)];
    const rows = r.epochs.map((e) => [e.epoch, e.loss, e.seconds, ...metricNames.map((n) => e.validation?.[n])]);
    const note = r.validation ? `<p>Validation on ${esc(r.validation.split)}: ${esc(num(r.validation.held_out_rows))} held-out rows; per-epoch ranking metrics over ${esc(num(r.validation.ranking_users))} sampled users. Best epoch by ${esc(r.validation.objective)}: <b>${esc(r.validation.best_epoch)}</b>.</p>` : '';
    const heading = r.command === 'tune' ? 'Final training per epoch (best parameters, all data)' : 'Training per epoch';
    body.push(`<section id="epochs"><h2>${esc(heading)}</h2>${note}<div class="row">${lineChart('chart-loss', 'Loss per epoch', 'epoch', loss)}${lineChart('chart-ranking', 'Validation ranking per epoch', 'epoch', ranking)}</div>${table(head, rows, 'epochs')}</section>`);
  }

  if (r.validation) {
    const v = r.validation;
    const lost = v.only_held_out.users + v.only_held_out.items > 0 ? `<p>${esc(v.only_held_out.users)} users and ${esc(v.only_held_out.items)} items appear only in the held-out rows.</p>` : '';
    body.push(`<section id="validation"><h2>Validation (model trained without the held-out rows)</h2>${lost}${table(['metric', 'value'], Object.entries(v.final).map(([k, x]) => [k, x]))}</section>`);
  }

  if (r.refit) {
    const f = r.refit;
    body.push(`<section id="refit"><h2>Refit on all data</h2><p>Retrained with ${esc(f.parameter)} = ${esc(f.iterations)} (${esc(f.chosen_by === 'given' ? 'as given' : 'the best validation epoch')}) on ${esc(num(f.interactions))} interactions: ${esc(num(f.users))} users × ${esc(num(f.items))} items in ${esc(num(f.seconds, 2))} s. This is the exported model.</p></section>`);
  }

  if (r.evaluation) {
    const e = r.evaluation;
    const rows = e.rows.map((x) => [x.protocol, x.metric, x.value, x.std, x.anchors.map((a) => `${a.model} ${a.value}`).join(', ')]);
    const sources = Object.entries(e.anchor_sources).map(([p, s]) => `<li><b>${esc(p)}</b>: ${esc(s)}</li>`).join('');
    const caveat = sources ? `<p>Published anchors are MovieLens 100K figures under the same protocol${e.anchors_comparable ? '' : ' — <b>this data does not look like MovieLens 100K, so they do not compare</b>'}.</p><ul>${sources}</ul>` : '';
    const protos = e.protocols.map((p) => `<li><b>${esc(p.name)}</b>: ${esc(p.description)}</li>`).join('');
    const foldKeys = [...new Set(e.folds.flatMap((f) => Object.keys(f.metrics)))];
    body.push(
      `<section id="evaluation"><h2>Evaluation</h2><ul>${protos}</ul>${table(['protocol', 'metric', 'value', '± std', 'published anchors'], rows, 'metrics')}${caveat}` +
        (e.folds.length > 1 ? `<h3>Folds</h3>${table(['protocol', 'fold', ...foldKeys, 's'], e.folds.map((f) => [f.protocol, f.id, ...foldKeys.map((k) => f.metrics[k]), f.seconds]))}` : '') +
        '</section>',
    );
  }

  if (r.tune) {
    const t = r.tune;
    const scores: Series = { name: t.objective, points: t.trials.filter((x) => Number.isFinite(x.value)).map((x) => [x.trial, x.value]), noLine: true };
    const best: Series = { name: 'best', points: Number.isFinite(t.best.value) ? [[t.best.trial, t.best.value]] : [], noLine: true };
    const curves: Series[] = t.trials.filter((x) => x.curve.length > 0).slice(0, PALETTE.length).map((x) => ({ name: `trial ${x.trial}`, points: x.curve.map((c) => [c.epoch, c.value]) }));
    const sorted = [...t.trials].sort((a, b) => (t.mode === 'min' ? a.value - b.value : b.value - a.value));
    body.push(
      `<section id="tune"><h2>Tuning (${esc(t.trials.length)} trials, ${esc(t.objective)}, ${esc(t.mode === 'min' ? 'lower' : 'higher')} is better)</h2><p>Best: trial ${esc(t.best.trial)}, ${esc(t.objective)} ${esc(num(t.best.value))}, <code>${esc(JSON.stringify(t.best.params))}</code>${t.log ? ` · run log <code>${esc(t.log)}</code>` : ''}</p>` +
        `<div class="row">${lineChart('chart-trials', `Validation ${t.objective} per trial`, 'trial', [scores, best])}${lineChart('chart-trial-curves', `Validation ${t.objective} per epoch (first trials)`, 'epoch', curves)}</div>` +
        table(['trial', t.objective, 'best epoch', 's', 'params'], sorted.map((x) => [x.trial, x.value, x.best_epoch, x.seconds, JSON.stringify(x.params)])) +
        '</section>',
    );
  }

  body.push(`<section id="params"><h2>Hyperparameters</h2>${keyValues(r.params)}</section>`);
  body.push(`<section id="timings"><h2>Timings (s)</h2>${keyValues(Object.fromEntries(Object.entries(r.timings).map(([k, v]) => [k, Number(v.toFixed(3))])))}</section>`);

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`recserve ${r.command} report — ${r.algo}`)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1360px;padding:0 16px;color:#222}
h1 small{font-weight:normal;color:#666;font-size:60%} .meta{color:#666;margin-top:-8px}
section{margin:28px 0} .row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.cards{display:flex;flex-wrap:wrap;gap:12px} .card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}
.card .k{color:#666;font-size:12px} .card .v{font-size:20px;font-weight:600}
table{border-collapse:collapse;margin:8px 0} th,td{border-bottom:1px solid #e4e4e4;padding:3px 10px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums} table.kv thead{display:none}
.chart{border:1px solid #eee;border-radius:6px;background:#fff;max-width:100%;height:auto}
.chart .axis{stroke:#444} .chart .grid{stroke:#eee} .chart .series{fill:none;stroke-width:2}
.chart text{font-size:11px;fill:#333} .chart .title{font-size:13px;font-weight:600;text-anchor:middle}
.chart .ytick{text-anchor:end} .chart .xtick,.chart .xlabel{text-anchor:middle}
code{background:#f4f4f4;padding:0 4px;border-radius:3px}
</style></head><body>
${body.join('\n')}
</body></html>
`;
}

/** Writes report.json and report.html into dir; returns their paths. */
export function writeReport(dir: string, report: Report): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const json = path.join(dir, REPORT_JSON);
  const html = path.join(dir, REPORT_HTML);
  writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(html, renderReportHtml(report));
  return { json, html };
}
