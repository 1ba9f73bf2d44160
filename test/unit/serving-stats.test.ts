import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chiSquareSf, chiSquareTest, detectDrift, kolmogorovQ, ksTest, parseCsv, psi, psiFromCounts } from '../../client/src/runtime/serving/drift';
import { histogramQuantile, parsePrometheusText, summarize, MetricsFormatError } from '../../client/src/runtime/serving/metrics';
import { evaluateSlo, ScrapeWindow } from '../../client/src/runtime/serving/slo';
import { mulberry32 } from '../../client/src/runtime/random';

const close = (actual: number, expected: number, tol: number, what: string): void => assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);

/** Box-Muller on a seeded generator: the same samples on every run. */
function normals(seed: number, n: number, mean = 0, sd = 1): number[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, () => mean + sd * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()));
}

describe('drift statistics against known values', () => {
  it('PSI of two histograms (hand-computed)', () => {
    // (0.25-0.5)ln(0.5) + (0.75-0.5)ln(1.5)
    close(psiFromCounts([50, 50], [25, 75]), 0.25 * Math.log(2) + 0.25 * Math.log(1.5), 1e-12, 'psi');
    assert.equal(psiFromCounts([10, 20, 30], [1, 2, 3]), 0);
    // An empty bin is clamped, so the value is large but finite.
    assert.ok(Number.isFinite(psiFromCounts([50, 50], [100, 0])) && psiFromCounts([50, 50], [100, 0]) > 1);
  });

  it('PSI over reference deciles: ~0 for the same distribution, large for a shifted one (fixed seeds)', () => {
    const ref = normals(1, 5000);
    assert.ok(psi(ref, normals(2, 5000)) < 0.02, `same: ${psi(ref, normals(2, 5000))}`);
    assert.ok(psi(ref, normals(3, 5000, 1)) > 0.5, `shifted: ${psi(ref, normals(3, 5000, 1))}`);
  });

  it('Kolmogorov survival function matches scipy.special.kolmogorov', () => {
    close(kolmogorovQ(0.5), 0.9639452436648751, 1e-9, 'Q(0.5)');
    close(kolmogorovQ(1.0), 0.26999967167735456, 1e-9, 'Q(1.0)');
    close(kolmogorovQ(1.36), 0.049485876755377876, 1e-9, 'Q(1.36)');
    close(kolmogorovQ(2.0), 0.0006709252557796953, 1e-12, 'Q(2.0)');
  });

  it('two-sample KS: D as scipy.stats.ks_2samp, p with the Stephens correction', () => {
    const a = [0.61, 0.29, 0.06, 0.59, -1.73, -0.74, 0.51, -0.56, 0.39, 1.64, 0.05, -0.06, 0.64, -0.82, 0.37, 1.77, 1.09, -1.28, 2.36, 1.31, 1.05, -0.32, -0.4, 1.06, -2.47];
    const b = [2.2, 1.66, 1.38, 0.2, 0.36, 0, 0.96, 1.56, 0.44, 1.5, -0.3, 0.66, 2.31, 3.29, -0.27, -0.37, 0.38, 0.7, 0.19, -0.41, -0.06, 0.1, 0.94, 1.63, 0.79];
    const r = ksTest(a, b);
    close(r.d, 0.24, 1e-12, 'D');
    close(r.p, 0.4140630380855635, 1e-9, 'p'); // scipy.special.kolmogorov((en + 0.12 + 0.11/en) * D)
    assert.ok(Math.abs(r.p - 0.4754535018190584) < 0.07, 'close to the exact p-value'); // ks_2samp(method='exact')
    assert.deepEqual(ksTest([1, 2, 3], [1, 2, 3]).d, 0);
  });

  it('chi-square survival function and a 2 x 3 contingency test match scipy', () => {
    close(chiSquareSf(3.841458820694124, 1), 0.05, 1e-9, 'sf(3.84, 1)');
    close(chiSquareSf(5.991464547107979, 2), 0.05, 1e-9, 'sf(5.99, 2)');
    close(chiSquareSf(18.307038053275146, 10), 0.05, 1e-9, 'sf(18.3, 10)');
    close(chiSquareSf(100, 50), 3.454931382984871e-5, 1e-10, 'sf(100, 50)');
    close(chiSquareSf(0.5, 3), 0.9188914116546758, 1e-9, 'sf(0.5, 3)');
    const t = chiSquareTest(new Map([['a', 30], ['b', 50], ['c', 20]]), new Map([['a', 45], ['b', 35], ['c', 20]]));
    close(t.statistic, 5.647058823529411, 1e-9, 'statistic'); // scipy.stats.chi2_contingency(correction=False)
    assert.equal(t.df, 2);
    close(t.p, 0.05939593960520477, 1e-9, 'p');
  });

  it('detectDrift: shifted inputs drift, unshifted ones do not (fixed seeds)', () => {
    const rand = mulberry32(42);
    const cats = ['month-to-month', 'one-year', 'two-year'];
    const rows = (seed: number, shift: number, catBias: number): Record<string, unknown>[] => {
      const x = normals(seed, 800, 50 + shift, 10);
      return x.map((v) => ({ tenure: v.toFixed(2), contract: cats[rand() < catBias ? 0 : Math.floor(rand() * 3)] }));
    };
    const reference = rows(10, 0, 0);
    for (const method of ['psi', 'ks', 'chi2'] as const) {
      const same = detectDrift(reference, rows(11, 0, 0), { method });
      assert.equal(same.drifted, false, `${method} unshifted: ${JSON.stringify(same.features)}`);
      const shifted = detectDrift(reference, rows(12, 8, 0.6), { method });
      assert.equal(shifted.drifted, true, `${method} shifted`);
      assert.deepEqual(shifted.features.filter((f) => f.drifted).map((f) => f.feature).sort(), ['contract', 'tenure']);
      assert.equal(shifted.features.find((f) => f.feature === 'contract')!.method, 'chi2');
    }
    const few = detectDrift(reference, rows(13, 0, 0).slice(0, 5));
    assert.equal(few.drifted, false);
    assert.equal(few.features.length, 0);
    assert.match(few.skipped[0], /5 current values \(need 30/);
  });

  it('parseCsv handles quotes, CRLF and missing cells', () => {
    assert.deepEqual(parseCsv('a,b\r\n1,"x, ""y"""\r\n2\n'), [{ a: '1', b: 'x, "y"' }, { a: '2', b: '' }]);
  });
});

const METRICS = `# HELP http_request_duration_seconds x
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{path="/predict",method="POST",status="200",le="0.01"} 50
http_request_duration_seconds_bucket{path="/predict",method="POST",status="200",le="0.1"} 90
http_request_duration_seconds_bucket{path="/predict",method="POST",status="200",le="1.0"} 100
http_request_duration_seconds_bucket{path="/predict",method="POST",status="200",le="+Inf"} 100
http_request_duration_seconds_count{path="/predict",method="POST",status="200"} 100
http_request_duration_seconds_bucket{path="/predict",method="POST",status="500",le="0.01"} 0
http_request_duration_seconds_bucket{path="/predict",method="POST",status="500",le="0.1"} 0
http_request_duration_seconds_bucket{path="/predict",method="POST",status="500",le="1.0"} 10
http_request_duration_seconds_bucket{path="/predict",method="POST",status="500",le="+Inf"} 10
http_request_duration_seconds_count{path="/predict",method="POST",status="500"} 10
http_request_duration_seconds_bucket{path="/metrics",method="GET",status="200",le="0.01"} 0
http_request_duration_seconds_bucket{path="/metrics",method="GET",status="200",le="0.1"} 0
http_request_duration_seconds_bucket{path="/metrics",method="GET",status="200",le="1.0"} 0
http_request_duration_seconds_bucket{path="/metrics",method="GET",status="200",le="+Inf"} 1000
http_request_duration_seconds_count{path="/metrics",method="GET",status="200"} 1000
model_info{name="a \\"quoted\\" \\\\ name\\nx",sha="1"} 1
process_start_time_seconds 1.7e9
`;

describe('Prometheus text format and histogram quantiles', () => {
  it('parses names, labels with escapes and values', () => {
    const s = parsePrometheusText(METRICS);
    assert.equal(s.length, 17);
    assert.deepEqual(s.find((x) => x.name === 'model_info')!.labels, { name: 'a "quoted" \\ name\nx', sha: '1' });
    assert.equal(s.find((x) => x.name === 'process_start_time_seconds')!.value, 1.7e9);
    assert.equal(s[3].value, 100);
    assert.equal(s[3].labels.le, '+Inf');
  });

  it('rejects malformed lines with the line number', () => {
    assert.throws(() => parsePrometheusText('ok 1\nbad{x="1} 2\n'), (e: Error) => e instanceof MetricsFormatError && /line 2/.test(e.message));
    assert.throws(() => parsePrometheusText('<html>'), MetricsFormatError);
    assert.throws(() => parsePrometheusText('m{a="1"} notanumber'), /bad value/);
  });

  it('histogram_quantile interpolates like Prometheus', () => {
    const b = [{ le: 0.01, count: 50 }, { le: 0.1, count: 90 }, { le: 1, count: 100 }, { le: Infinity, count: 100 }];
    close(histogramQuantile(0.5, b), 0.01, 1e-12, 'p50'); // rank 50 is the top of the first bucket
    close(histogramQuantile(0.25, b), 0.005, 1e-12, 'p25'); // first bucket starts at 0
    close(histogramQuantile(0.7, b), 0.01 + 0.09 * (20 / 40), 1e-12, 'p70');
    close(histogramQuantile(0.95, b), 0.1 + 0.9 * (5 / 10), 1e-12, 'p95');
    // In the +Inf bucket: the highest finite bound.
    close(histogramQuantile(0.99, [{ le: 0.1, count: 1 }, { le: Infinity, count: 10 }]), 0.1, 0, 'inf bucket');
    assert.ok(Number.isNaN(histogramQuantile(0.5, [{ le: 0.1, count: 0 }, { le: Infinity, count: 0 }])));
  });

  it('summarize: probes and scrapes are left out; 5xx is the error rate; deltas between scrapes', () => {
    const now = { samples: parsePrometheusText(METRICS), at: 10_000 };
    const s = summarize(now);
    assert.equal(s.requests, 110);
    assert.equal(s.errors, 10);
    close(s.errorRate, 10 / 110, 1e-12, 'error rate');
    assert.ok(s.p99 > 0.1 && s.p99 <= 1);
    const before = { samples: parsePrometheusText(METRICS.replace(/} 100$/gm, '} 50').replace(/"0.01"} 50/g, '"0.01"} 25').replace(/"0.1"} 90/g, '"0.1"} 45').replace(/} 10$/gm, '} 0')), at: 5_000 };
    const d = summarize(now, before);
    assert.equal(d.requests, 60);
    close(d.rps, 12, 1e-9, 'rps over 5 s');
    close(d.errorRate, 10 / 60, 1e-12, 'error rate in the interval');
  });

  it('evaluateSlo names the measured number and the limit; too little traffic is not a breach', () => {
    const summary = summarize({ samples: parsePrometheusText(METRICS), at: 0 });
    const r = evaluateSlo({ p95LatencyMs: 100, errorRate: 0.01, windowMs: 60_000 }, summary);
    assert.equal(r.ok, false);
    assert.match(r.breaches[0], /^p95 latency [0-9.]+ ms > 100 ms$/);
    assert.match(r.breaches[1], /^error rate 9\.09% > 1\.00% \(10 of 110 requests\)$/);
    assert.equal(evaluateSlo({ p95LatencyMs: 100, windowMs: 1 }, summary, 1000).noData, true);
    assert.equal(evaluateSlo({ p95LatencyMs: 100, windowMs: 1 }, summary, 1000).ok, true);
  });

  it('ScrapeWindow keeps one baseline at or before the window start', () => {
    const w = new ScrapeWindow(10_000);
    const at = (t: number, n: number): { samples: ReturnType<typeof parsePrometheusText>; at: number } => ({ samples: parsePrometheusText(`http_request_duration_seconds_bucket{le="0.1"} ${n}\nhttp_request_duration_seconds_bucket{le="+Inf"} ${n}\nhttp_request_duration_seconds_count ${n}\n`), at: t });
    assert.equal(w.summary(), undefined);
    w.add(at(0, 0));
    w.add(at(5_000, 100));
    w.add(at(12_000, 130));
    w.add(at(20_000, 200));
    const s = w.summary()!;
    // Baseline: the scrape at 5 s (the last one at or before 20 s - 10 s).
    assert.equal(s.requests, 100);
    close(s.rps, 100 / 15, 1e-9, 'rps');
  });
});
