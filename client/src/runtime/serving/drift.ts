/**
 * Input drift statistics, pure: PSI and the two-sample Kolmogorov-Smirnov test for numeric features,
 * Pearson's chi-square test of homogeneity for categorical ones. `detectDrift` compares logged inputs
 * with a reference table feature by feature.
 */

/** Proportions below this are clamped, so an empty bin gives a large but finite PSI (the usual convention). */
const PSI_EPSILON = 1e-4;

/**
 * Population Stability Index of `actual` against `expected`, over `bins` bins cut at the reference's
 * quantiles (so each holds about the same share of the reference). Values outside the reference's range
 * fall into the outer bins.
 */
export function psi(expected: number[], actual: number[], bins = 10): number {
  if (expected.length === 0 || actual.length === 0) return NaN;
  const sorted = [...expected].sort((a, b) => a - b);
  const cuts: number[] = [];
  for (let i = 1; i < bins; i++) {
    const c = quantileSorted(sorted, i / bins);
    if (cuts.length === 0 || c > cuts[cuts.length - 1]) cuts.push(c);
  }
  const bin = (v: number): number => {
    let lo = 0;
    let hi = cuts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (v <= cuts[mid]) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const e = new Array(cuts.length + 1).fill(0);
  const a = new Array(cuts.length + 1).fill(0);
  for (const v of expected) e[bin(v)]++;
  for (const v of actual) a[bin(v)]++;
  return psiFromCounts(e, a);
}

/** PSI of two histograms over the same bins (or categories, in the same order). */
export function psiFromCounts(expected: number[], actual: number[]): number {
  const te = expected.reduce((s, x) => s + x, 0);
  const ta = actual.reduce((s, x) => s + x, 0);
  if (te === 0 || ta === 0) return NaN;
  let total = 0;
  for (let i = 0; i < expected.length; i++) {
    const pe = Math.max(expected[i] / te, PSI_EPSILON);
    const pa = Math.max(actual[i] / ta, PSI_EPSILON);
    total += (pa - pe) * Math.log(pa / pe);
  }
  return total;
}

/** Linear interpolation between order statistics (numpy's default, "type 7"). */
export function quantileSorted(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (h - lo);
}

/** Two-sample Kolmogorov-Smirnov: D = sup |F1 - F2| and its asymptotic p-value. */
export function ksTest(a: number[], b: number[]): { d: number; p: number } {
  if (a.length === 0 || b.length === 0) return { d: NaN, p: NaN };
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i], y[j]);
    while (i < x.length && x[i] === v) i++;
    while (j < y.length && y[j] === v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  const en = Math.sqrt((x.length * y.length) / (x.length + y.length));
  return { d, p: kolmogorovQ((en + 0.12 + 0.11 / en) * d) };
}

/** Survival function of the Kolmogorov distribution: P(K > lambda). */
export function kolmogorovQ(lambda: number): number {
  if (lambda < 0.2) return 1; // The series converges too slowly here, and the value is 1 to double precision.
  let sum = 0;
  for (let j = 1; j <= 100; j++) {
    const term = 2 * (j % 2 ? 1 : -1) * Math.exp(-2 * j * j * lambda * lambda);
    sum += term;
    if (Math.abs(term) < 1e-16) break;
  }
  return Math.min(1, Math.max(0, sum));
}

/**
 * Pearson's chi-square test that two samples of a categorical feature come from the same distribution
 * (a 2 x k contingency table). Categories seen in neither sample are ignored.
 */
export function chiSquareTest(expected: Map<string, number>, actual: Map<string, number>): { statistic: number; df: number; p: number } {
  const cats = [...new Set([...expected.keys(), ...actual.keys()])].filter((c) => (expected.get(c) ?? 0) + (actual.get(c) ?? 0) > 0);
  const ne = cats.reduce((s, c) => s + (expected.get(c) ?? 0), 0);
  const na = cats.reduce((s, c) => s + (actual.get(c) ?? 0), 0);
  const n = ne + na;
  if (ne === 0 || na === 0 || cats.length < 2) return { statistic: 0, df: Math.max(0, cats.length - 1), p: 1 };
  let stat = 0;
  for (const c of cats) {
    const col = (expected.get(c) ?? 0) + (actual.get(c) ?? 0);
    for (const [obs, rowTotal] of [[expected.get(c) ?? 0, ne], [actual.get(c) ?? 0, na]] as const) {
      const exp = (rowTotal * col) / n;
      stat += ((obs - exp) * (obs - exp)) / exp;
    }
  }
  const df = cats.length - 1;
  return { statistic: stat, df, p: chiSquareSf(stat, df) };
}

/** P(X > x) for a chi-square distribution with `df` degrees of freedom. */
export function chiSquareSf(x: number, df: number): number {
  if (x <= 0) return 1;
  return upperRegularizedGamma(df / 2, x / 2);
}

function lnGamma(z: number): number {
  // Lanczos approximation (g = 7, n = 9), accurate to ~1e-15 for z > 0.
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lnGamma(1 - z);
  z -= 1;
  let x = c[0];
  for (let i = 1; i < 9; i++) x += c[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(x);
}

/** Q(a, x) = Γ(a, x) / Γ(a): a series below a + 1, a continued fraction (Lentz) above. */
export function upperRegularizedGamma(a: number, x: number): number {
  if (x <= 0) return 1;
  const gln = lnGamma(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let del = sum;
    let ap = a;
    for (let n = 0; n < 1000; n++) {
      ap++;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * 1e-15) break;
    }
    return Math.max(0, 1 - sum * Math.exp(-x + a * Math.log(x) - gln));
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return Math.min(1, Math.exp(-x + a * Math.log(x) - gln) * h);
}

export type Row = Record<string, unknown>;

export interface FeatureDrift {
  feature: string;
  kind: 'numeric' | 'categorical';
  /** The statistic the decision used: PSI, KS D or chi-square. */
  method: 'psi' | 'ks' | 'chi2';
  statistic: number;
  p?: number;
  drifted: boolean;
  /** Values present in each sample (missing/empty ones are left out). */
  n: { reference: number; current: number };
  detail: string;
}

export interface DriftReport {
  drifted: boolean;
  features: FeatureDrift[];
  /** Features skipped, with why (absent from a sample, too few values). */
  skipped: string[];
}

export interface DriftOptions {
  method?: 'psi' | 'ks' | 'chi2';
  /** psi: PSI above it drifts (default 0.2). ks/chi2: p-value below it drifts (default 0.05). */
  threshold?: number;
  features?: string[];
  /** Fewer values than this in either sample: skipped, not judged (default 30). */
  minSamples?: number;
}

/**
 * Compares `current` (logged inputs) with `reference` per feature. A feature is numeric when every
 * non-empty value in the reference parses as a number. Numeric features use the chosen method (PSI or
 * KS; chi2 bins them at the reference's deciles); categorical features always use chi-square.
 */
export function detectDrift(reference: Row[], current: Row[], options: DriftOptions = {}): DriftReport {
  const method = options.method ?? 'psi';
  const minSamples = options.minSamples ?? 30;
  const features = options.features ?? Object.keys(reference[0] ?? {});
  const out: DriftReport = { drifted: false, features: [], skipped: [] };
  for (const f of features) {
    const refVals = reference.map((r) => r[f]).filter((v) => v !== undefined && v !== null && v !== '');
    const curVals = current.map((r) => r[f]).filter((v) => v !== undefined && v !== null && v !== '');
    if (refVals.length < minSamples || curVals.length < minSamples) {
      out.skipped.push(`${f}: ${refVals.length} reference and ${curVals.length} current values (need ${minSamples} of each)`);
      continue;
    }
    const numeric = refVals.every((v) => typeof v === 'number' || (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))));
    const n = { reference: refVals.length, current: curVals.length };
    let fd: FeatureDrift;
    if (numeric) {
      const r = refVals.map(Number);
      const c = curVals.map(Number).filter(Number.isFinite);
      if (method === 'ks') {
        const t = ksTest(r, c);
        const alpha = options.threshold ?? 0.05;
        fd = { feature: f, kind: 'numeric', method, statistic: t.d, p: t.p, drifted: t.p < alpha, n, detail: `KS D=${t.d.toFixed(3)}, p=${fmtP(t.p)} (drift when p < ${alpha})` };
      } else if (method === 'chi2') {
        const sorted = [...r].sort((a, b) => a - b);
        const cuts = [...new Set([1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => quantileSorted(sorted, i / 10)))];
        const bin = (v: number): string => String(cuts.filter((x) => v > x).length);
        const t = chiSquareTest(countBy(r.map(bin)), countBy(c.map(bin)));
        const alpha = options.threshold ?? 0.05;
        fd = { feature: f, kind: 'numeric', method, statistic: t.statistic, p: t.p, drifted: t.p < alpha, n, detail: `chi2=${t.statistic.toFixed(2)} (df ${t.df}), p=${fmtP(t.p)} (drift when p < ${alpha})` };
      } else {
        const v = psi(r, c);
        const limit = options.threshold ?? 0.2;
        fd = { feature: f, kind: 'numeric', method: 'psi', statistic: v, drifted: v > limit, n, detail: `PSI=${v.toFixed(3)} (drift when > ${limit})` };
      }
    } else {
      const t = chiSquareTest(countBy(refVals.map(String)), countBy(curVals.map(String)));
      const alpha = method === 'chi2' && options.threshold !== undefined ? options.threshold : 0.05;
      fd = { feature: f, kind: 'categorical', method: 'chi2', statistic: t.statistic, p: t.p, drifted: t.p < alpha, n, detail: `chi2=${t.statistic.toFixed(2)} (df ${t.df}), p=${fmtP(t.p)} (drift when p < ${alpha})` };
    }
    out.features.push(fd);
    if (fd.drifted) out.drifted = true;
  }
  return out;
}

function countBy(values: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

function fmtP(p: number): string {
  return p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
}

/** A small CSV reader (RFC 4180 quotes, CRLF) for reference tables; numbers stay strings until used. */
export function parseCsv(text: string, maxRows = 1_000_000): Row[] {
  const rows: string[][] = [];
  let field = '';
  let row: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
      if (rows.length > maxRows) break;
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  const [header, ...data] = rows;
  if (!header) return [];
  return data.map((r) => Object.fromEntries(header.map((h, i) => [h.trim(), r[i] ?? ''])));
}
