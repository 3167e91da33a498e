/** The figures a benchmark produces, and the table they are printed as. */
import { fmt, summarize, type Summary } from './stats.js';

export interface Figure {
  /** Stable id, e.g. `drain-s/10000/fsync/rate`. */
  id: string;
  /** The --only name that reproduces it. */
  group: string;
  label: string;
  unit: string;
  summary: Summary;
  /** Higher is better (rates) or lower (times, memory). */
  better: 'higher' | 'lower';
  target?: { text: string; met: boolean };
  note?: string;
}

export interface Skipped {
  group: string;
  label: string;
  why: string;
}

export interface Ratio {
  id: string;
  label: string;
  value: number;
  /** In words: which is faster, by how much. */
  meaning: string;
}

export class Results {
  readonly figures: Figure[] = [];
  readonly ratios: Ratio[] = [];
  readonly skipped: Skipped[] = [];
  readonly notes: string[] = [];

  add(f: Omit<Figure, 'summary' | 'better'> & { values: number[]; better?: 'higher' | 'lower'; targetMax?: number; targetMin?: number; targetText?: string }): Figure {
    const summary = summarize(f.values);
    let target = f.target;
    if (f.targetMax !== undefined) target = { text: f.targetText ?? `≤ ${fmt(f.targetMax)}`, met: summary.median <= f.targetMax };
    if (f.targetMin !== undefined) target = { text: f.targetText ?? `≥ ${fmt(f.targetMin)}`, met: summary.median >= f.targetMin };
    const figure: Figure = { id: f.id, group: f.group, label: f.label, unit: f.unit, summary, better: f.better ?? 'lower', target, note: f.note };
    this.figures.push(figure);
    return figure;
  }

  skip(group: string, label: string, why: string): void {
    this.skipped.push({ group, label, why });
  }

  get(id: string): Figure | undefined {
    return this.figures.find((f) => f.id === id);
  }
}

function pad(s: string, n: number, right = false): string {
  const len = [...s].length;
  return right ? ' '.repeat(Math.max(0, n - len)) + s : s + ' '.repeat(Math.max(0, n - len));
}

/** A plain-text table (also valid Markdown). */
export function table(results: Results): string {
  const rows: string[][] = [['figure', 'median', 'min', 'max', 'unit', 'runs', 'target', '--only']];
  for (const f of results.figures) {
    const s = f.summary;
    rows.push([
      f.label,
      fmt(s.median),
      fmt(s.min),
      fmt(s.max),
      f.unit,
      String(s.runs),
      f.target ? `${f.target.text} ${f.target.met ? 'met' : 'MISSED'}` : '',
      f.group,
    ]);
  }
  for (const k of results.skipped) rows.push([k.label, k.why, '', '', '', '', '', k.group]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...r[i]!].length)));
  const numeric = new Set([1, 2, 3, 5]);
  const line = (r: string[]) => `| ${r.map((c, i) => pad(c, widths[i]!, numeric.has(i) && r !== rows[0])).join(' | ')} |`;
  const out = [line(rows[0]!), `|${widths.map((w, i) => (numeric.has(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`, ...rows.slice(1).map(line)];
  if (results.ratios.length) {
    out.push('', '| ratio | value | meaning |', '|---|---:|---|');
    for (const r of results.ratios) out.push(`| ${r.label} | ${r.value.toFixed(2)} | ${r.meaning} |`);
  }
  return out.join('\n');
}
