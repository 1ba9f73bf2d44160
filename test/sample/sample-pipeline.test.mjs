// End-to-end test of the churn-local sample's Python scripts (standard library only):
// prepare -> train -> evaluate on a copy of samples/churn-local, then the model server.
//
//   node --test test/sample/
//
// Needs python3 (3.9+) on PATH, or PYTHON=/path/to/python. Talks only to 127.0.0.1.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SAMPLE = path.join(ROOT, 'samples', 'churn-local');
const PYTHON = process.env.PYTHON || 'python3';
const GENERATED = ['data/features', 'models', 'metrics', 'logs'];

const tempDirs = [];
const children = new Set();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function copySample() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'churn-local-'));
  tempDirs.push(dir);
  fs.cpSync(SAMPLE, dir, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(SAMPLE, src).split(path.sep).join('/');
      if (rel.split('/').includes('__pycache__')) return false;
      return !GENERATED.some((g) => rel === g || rel.startsWith(g + '/'));
    },
  });
  return dir;
}

function py(cwd, args, timeout = 60_000) {
  const t0 = performance.now();
  const r = spawnSync(PYTHON, args, {
    cwd,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

function ok(r, what) {
  assert.equal(r.status, 0, `${what} exited with ${r.status} (signal ${r.signal})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

const readJson = (dir, rel) => JSON.parse(fs.readFileSync(path.join(dir, rel), 'utf8'));

function readCsv(file) {
  const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
  const header = lines[0].split(',');
  return { header, rows: lines.slice(1).map((l) => l.split(',')) };
}

// The spec's params and the command lines the steps use (kept in sync with mlpipeline.yaml).
const SPEC = fs.readFileSync(path.join(SAMPLE, 'mlpipeline.yaml'), 'utf8');
function paramDefault(name) {
  const m = SPEC.match(new RegExp(`^\\s+${name}:\\s*\\{[^}]*default:\\s*([^,}\\s]+)`, 'm'));
  assert.ok(m, `param ${name} with a default in mlpipeline.yaml`);
  return m[1];
}
const PARAMS = { lr: paramDefault('lr'), epochs: paramDefault('epochs'), l2: paramDefault('l2') };
const CMD = {
  prepare: ['src/prepare.py', '--in', 'data/churn.csv', '--out', 'data/features/'],
  train: [
    'src/train.py', '--features', 'data/features/', '--lr', PARAMS.lr, '--epochs', PARAMS.epochs, '--l2', PARAMS.l2,
    '--model', 'models/model.json', '--metrics', 'metrics/train.json', '--loss', 'metrics/loss.csv',
  ],
  evaluate: ['src/evaluate.py', '--model', 'models/model.json', '--features', 'data/features/', '--metrics', 'metrics/eval.json'],
};

function runPipeline(dir) {
  const times = {};
  for (const step of ['prepare', 'train', 'evaluate']) {
    const r = py(dir, CMD[step]);
    ok(r, step);
    times[step] = r.ms;
  }
  return times;
}

// ---------------------------------------------------------------- HTTP helpers

function request(port, method, urlPath, { body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = http.request(
      { host: '127.0.0.1', port, method, path: urlPath, agent: false, headers, timeout: 10_000 },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          settled = true;
          resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (e) => { if (!settled) { settled = true; reject(e); } });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    // Writing a large body the server refuses early may end in EPIPE/ECONNRESET after the answer arrived.
    req.on('error', (e) => { if (!settled) { settled = true; reject(e); } });
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

const postJson = (port, obj) =>
  request(port, 'POST', '/predict', { body: JSON.stringify(obj), headers: { 'Content-Type': 'application/json' } });

async function startServer(dir, extraArgs = []) {
  const env = { ...process.env };
  delete env.PYTHONDONTWRITEBYTECODE; // serve.py itself must keep src/__pycache__ from appearing
  const child = spawn(PYTHON, ['src/serve.py', '--model', 'models/model.json', '--port', '0', ...extraArgs], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  children.add(child);
  const srv = { child, out: '', err: '', port: 0 };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d) => { srv.out += d; });
  child.stderr.on('data', (d) => { srv.err += d; });
  srv.exited = new Promise((resolve) => child.on('exit', (code, signal) => { children.delete(child); resolve({ code, signal }); }));

  for (let i = 0; i < 300 && !srv.port; i++) { // 15 s at most
    const m = srv.out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    if (m) srv.port = Number(m[1]);
    else if (child.exitCode !== null) break;
    else await sleep(50);
  }
  if (!srv.port) {
    child.kill('SIGKILL');
    throw new Error(`serve.py did not start\nstdout:\n${srv.out}\nstderr:\n${srv.err}`);
  }
  let healthy = false;
  for (let i = 0; i < 100 && !healthy; i++) { // 10 s at most
    try {
      const r = await request(srv.port, 'GET', '/healthz');
      healthy = r.status === 200 && r.text.trim() === 'ok';
    } catch {
      // not accepting connections yet
    }
    if (!healthy) await sleep(100);
  }
  assert.ok(healthy, `/healthz never answered 200 ok\nstderr:\n${srv.err}`);
  return srv;
}

async function stopServer(srv, limitMs = 5000) {
  const t0 = performance.now();
  srv.child.kill('SIGTERM');
  const result = await Promise.race([srv.exited, sleep(limitMs).then(() => 'timeout')]);
  if (result === 'timeout') srv.child.kill('SIGKILL');
  return { result, ms: performance.now() - t0 };
}

// Prometheus text format: [{name, labels, value}]
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/);
    assert.ok(m, `malformed metrics line: ${line}`);
    const labels = {};
    for (const l of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

function metricValue(samples, name, labels) {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found.length ? found[0].value : 0;
}

const RAW_FIELDS = ['tenure_months', 'monthly_charges', 'total_charges', 'contract', 'internet_service', 'payment_method', 'support_calls', 'senior'];
const GOOD_INSTANCE = {
  tenure_months: 3, monthly_charges: 89.5, total_charges: 270.1, contract: 'month-to-month',
  internet_service: 'fiber', payment_method: 'electronic_check', support_calls: 4, senior: 1,
};

after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------- pipeline

describe('churn-local sample pipeline', { timeout: 120_000 }, () => {
  let dir;
  let times;

  before(() => {
    dir = copySample();
    times = runPipeline(dir);
  });

  test('the spec calls the scripts the way this test does', () => {
    for (const s of [
      'python3 src/prepare.py --in ${datasets.raw} --out ${outputs.features}',
      'python3 src/train.py --features ${steps.prepare.outputs.features}',
      '--lr ${params.lr} --epochs ${params.epochs} --l2 ${params.l2}',
      '--model ${outputs.model} --metrics metrics/train.json --loss metrics/loss.csv',
      'python3 src/evaluate.py --model ${steps.train.outputs.model}',
      '--features ${steps.prepare.outputs.features} --metrics metrics/eval.json',
      'python3 src/serve.py --model ${model} --port 8080',
      'uri: data/churn.csv',
      'features: data/features/',
      'model: models/model.json',
    ]) {
      assert.ok(SPEC.includes(s), `mlpipeline.yaml contains ${s}`);
    }
  });

  test('runs quickly with the default params', (t) => {
    const total = times.prepare + times.train + times.evaluate;
    t.diagnostic(`prepare ${times.prepare.toFixed(0)} ms, train ${times.train.toFixed(0)} ms, evaluate ${times.evaluate.toFixed(0)} ms, total ${total.toFixed(0)} ms (lr=${PARAMS.lr} epochs=${PARAMS.epochs} l2=${PARAMS.l2})`);
    assert.ok(total < 30_000, `pipeline took ${total} ms`);
  });

  test('prepare writes train/test splits and a schema', () => {
    const schema = readJson(dir, 'data/features/schema.json');
    const train = readCsv(path.join(dir, 'data/features/train.csv'));
    const testSplit = readCsv(path.join(dir, 'data/features/test.csv'));
    const raw = readCsv(path.join(dir, 'data/churn.csv'));
    assert.deepEqual(train.header, ['customer_id', ...schema.features, 'churned']);
    assert.deepEqual(testSplit.header, train.header);
    assert.equal(train.rows.length + testSplit.rows.length, raw.rows.length);
    assert.ok(Math.abs(testSplit.rows.length / raw.rows.length - 0.2) < 0.01, 'an 80/20 split');
    assert.equal(schema.split.n_train, train.rows.length);
    assert.equal(schema.split.n_test, testSplit.rows.length);
    for (const c of ['tenure_months', 'monthly_charges', 'total_charges', 'support_calls']) {
      const s = schema.encoding.numeric[c];
      assert.ok(Number.isFinite(s.mean) && s.std > 0 && Number.isFinite(s.median), `scaling stats for ${c}`);
    }
    assert.ok(schema.features.includes('contract=month-to-month'), 'one-hot encoded contract');
    // no empty cells left, every feature a finite number, labels 0/1
    for (const row of [...train.rows, ...testSplit.rows]) {
      assert.equal(row.length, train.header.length);
      for (const v of row.slice(1, -1)) assert.ok(v !== '' && Number.isFinite(Number(v)), `feature value ${v}`);
      assert.ok(row.at(-1) === '0' || row.at(-1) === '1');
    }
    // the split is disjoint and stratified
    const ids = new Set(train.rows.map((r) => r[0]));
    assert.ok(testSplit.rows.every((r) => !ids.has(r[0])), 'train and test share no customer');
    const rate = (rows) => rows.filter((r) => r.at(-1) === '1').length / rows.length;
    assert.ok(Math.abs(rate(train.rows) - rate(testSplit.rows)) < 0.01, 'same churn rate in train and test');
    // standardized numeric columns in train: mean ~0, std ~1
    const col = train.header.indexOf('tenure_months');
    const xs = train.rows.map((r) => Number(r[col]));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
    assert.ok(Math.abs(mean) < 1e-6 && Math.abs(sd - 1) < 1e-6, `standardized tenure (mean ${mean}, sd ${sd})`);
    // no temporary files left behind
    assert.deepEqual(fs.readdirSync(path.join(dir, 'data/features')).sort(), ['schema.json', 'test.csv', 'train.csv']);
  });

  test('train writes a loss row per epoch, a model and numeric metrics', () => {
    const epochs = Number(PARAMS.epochs);
    const loss = readCsv(path.join(dir, 'metrics/loss.csv'));
    assert.deepEqual(loss.header, ['epoch', 'loss', 'val_loss', 'accuracy']);
    assert.equal(loss.rows.length, epochs);
    loss.rows.forEach((r, i) => {
      assert.equal(Number(r[0]), i + 1);
      for (const v of r.slice(1)) assert.ok(Number.isFinite(Number(v)), `loss value ${v}`);
    });
    const first = Number(loss.rows[0][1]);
    const last = Number(loss.rows.at(-1)[1]);
    assert.ok(last < first, `training loss decreases (${first} -> ${last})`);
    assert.ok(Number(loss.rows.at(-1)[2]) < Number(loss.rows[0][2]), 'validation loss decreases');

    const model = readJson(dir, 'models/model.json');
    const schema = readJson(dir, 'data/features/schema.json');
    assert.deepEqual(model.features, schema.features);
    assert.equal(model.weights.length, model.features.length);
    assert.ok(model.weights.every(Number.isFinite) && Number.isFinite(model.bias));
    assert.deepEqual(model.encoding, schema.encoding, 'scaling copied from schema.json');

    const metrics = readJson(dir, 'metrics/train.json');
    for (const k of ['loss', 'val_loss', 'accuracy', 'epochs']) assert.ok(k in metrics, `train metrics has ${k}`);
    for (const [k, v] of Object.entries(metrics)) assert.equal(typeof v, 'number', `train metric ${k} is a number`);
    assert.equal(metrics.epochs, epochs);
    assert.equal(metrics.loss, Number(loss.rows.at(-1)[1]));
    assert.deepEqual(fs.readdirSync(path.join(dir, 'models')), ['model.json'], 'no temporary files left behind');
  });

  test('evaluate scores the test split', (t) => {
    const m = readJson(dir, 'metrics/eval.json');
    t.diagnostic(`eval metrics: ${JSON.stringify(m)}`);
    for (const k of ['auc', 'accuracy', 'precision', 'recall', 'f1', 'log_loss', 'n_test']) {
      assert.equal(typeof m[k], 'number', `eval metric ${k} is a number`);
    }
    for (const [k, v] of Object.entries(m)) assert.ok(Number.isFinite(v), `eval metric ${k} is finite`);
    assert.ok(m.auc > 0.7, `auc ${m.auc} > 0.7`);
    assert.ok(m.auc < 0.95, `auc ${m.auc} is plausible for noisy data`);
    assert.ok(m.accuracy > 0.6 && m.accuracy <= 1);
    assert.equal(m.n_test, readCsv(path.join(dir, 'data/features/test.csv')).rows.length);
  });

  test('evaluate AUC matches a reference computation from the model and test.csv', () => {
    const model = readJson(dir, 'models/model.json');
    const { rows } = readCsv(path.join(dir, 'data/features/test.csv'));
    const scored = rows.map((r) => {
      const z = model.bias + model.weights.reduce((a, w, j) => a + w * Number(r[j + 1]), 0);
      return { p: 1 / (1 + Math.exp(-z)), y: Number(r.at(-1)) };
    });
    const pos = scored.filter((s) => s.y === 1);
    const neg = scored.filter((s) => s.y === 0);
    let wins = 0;
    for (const a of pos) for (const b of neg) wins += a.p > b.p ? 1 : a.p === b.p ? 0.5 : 0;
    const auc = wins / (pos.length * neg.length);
    assert.ok(Math.abs(auc - readJson(dir, 'metrics/eval.json').auc) < 1e-5, `pairwise AUC ${auc}`);
  });

  test('the same inputs give byte-identical outputs', () => {
    const dir2 = copySample();
    runPipeline(dir2);
    for (const rel of [
      'data/features/train.csv', 'data/features/test.csv', 'data/features/schema.json',
      'models/model.json', 'metrics/train.json', 'metrics/loss.csv', 'metrics/eval.json',
    ]) {
      assert.ok(fs.readFileSync(path.join(dir, rel)).equals(fs.readFileSync(path.join(dir2, rel))), `${rel} is identical`);
    }
  });

  test('a rerun of train starts the loss CSV fresh; prepare clears stale temporary files', () => {
    const dir3 = copySample();
    fs.mkdirSync(path.join(dir3, 'data/features'), { recursive: true });
    fs.writeFileSync(path.join(dir3, 'data/features/.train.csv.tmp-99999'), 'half a file');
    ok(py(dir3, CMD.prepare), 'prepare');
    assert.deepEqual(fs.readdirSync(path.join(dir3, 'data/features')).sort(), ['schema.json', 'test.csv', 'train.csv']);
    const args = [...CMD.train];
    args[args.indexOf('--epochs') + 1] = '3';
    ok(py(dir3, args), 'train (3 epochs)');
    ok(py(dir3, args), 'train again');
    assert.equal(readCsv(path.join(dir3, 'metrics/loss.csv')).rows.length, 3);
  });

  test('prepare rejects a CSV that lacks a column, naming it, with exit code 2', () => {
    const dir4 = copySample();
    const text = fs.readFileSync(path.join(dir4, 'data/churn.csv'), 'utf8');
    fs.writeFileSync(path.join(dir4, 'data/bad.csv'), text.replace('tenure_months', 'tenure'));
    const r = py(dir4, ['src/prepare.py', '--in', 'data/bad.csv', '--out', 'data/features/']);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /missing required column 'tenure_months'/);
    assert.doesNotMatch(r.stderr, /Traceback/);
    assert.ok(!fs.existsSync(path.join(dir4, 'data/features/train.csv')), 'nothing written');

    const missing = py(dir4, ['src/prepare.py', '--in', 'data/nope.csv', '--out', 'data/features/']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /not found: data\/nope\.csv/);

    fs.writeFileSync(path.join(dir4, 'data/badval.csv'), text.replace(/\n(C\d+),(\d+),/, '\n$1,lots,'));
    const badValue = py(dir4, ['src/prepare.py', '--in', 'data/badval.csv', '--out', 'data/features/']);
    assert.equal(badValue.status, 2);
    assert.match(badValue.stderr, /line 2: column 'tenure_months': 'lots' is not a number/);
  });

  test('train validates its arguments with exit code 2', () => {
    const base = [...CMD.train];
    const withArg = (flag, value) => {
      const a = [...base];
      a[a.indexOf(flag) + 1] = value;
      return a;
    };
    for (const [flag, value, pattern] of [
      ['--lr', '0', /--lr must be > 0/],
      ['--lr', '-0.1', /--lr must be > 0/],
      ['--lr', 'fast', /--lr must be a number/],
      ['--epochs', '0', /--epochs must be >= 1/],
      ['--epochs', '2.5', /--epochs must be an integer/],
      ['--l2', '-1', /--l2 must be >= 0/],
    ]) {
      const r = py(dir, withArg(flag, value));
      assert.equal(r.status, 2, `${flag} ${value}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
    const r = py(dir, withArg('--features', 'data/missing/'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /features folder not found: data\/missing\//);
  });

  // ---------------------------------------------------------------- serving

  describe('serve.py', () => {
    let srv;
    const counts = { ok: 0, bad: 0 };

    before(async () => {
      srv = await startServer(dir);
    });

    after(async () => {
      if (srv && srv.child.exitCode === null) srv.child.kill('SIGKILL');
    });

    test('POST /predict scores instances', async () => {
      const r = await postJson(srv.port, { instances: [GOOD_INSTANCE, { ...GOOD_INSTANCE, tenure_months: 70, contract: 'two-year', support_calls: 0 }] });
      counts.ok++;
      assert.equal(r.status, 200, r.text);
      assert.match(r.headers['content-type'], /application\/json/);
      const { predictions } = JSON.parse(r.text);
      assert.equal(predictions.length, 2);
      for (const p of predictions) {
        assert.ok(p.churn_probability >= 0 && p.churn_probability <= 1);
        assert.equal(p.churned, p.churn_probability >= 0.5 ? 1 : 0);
      }
      assert.ok(predictions[0].churn_probability > predictions[1].churn_probability, 'a new, unhappy customer is riskier than a loyal one');
    });

    test('predictions on raw CSV rows match the model on the prepared features', async () => {
      const raw = readCsv(path.join(dir, 'data/churn.csv'));
      const prepared = readCsv(path.join(dir, 'data/features/test.csv'));
      const rawById = new Map(raw.rows.map((r) => [r[0], r]));
      const model = readJson(dir, 'models/model.json');
      // test rows, including some with empty cells (filled like prepare does)
      const picked = prepared.rows.filter((r) => rawById.get(r[0]).includes('')).slice(0, 10).concat(prepared.rows.slice(0, 10));
      assert.ok(picked.length >= 15);
      const instances = picked.map((r) => Object.fromEntries(raw.header.slice(0, -1).map((h, i) => [h, rawById.get(r[0])[i]])));
      const res = await postJson(srv.port, { instances });
      counts.ok++;
      assert.equal(res.status, 200, res.text);
      const { predictions } = JSON.parse(res.text);
      picked.forEach((r, k) => {
        const z = model.bias + model.weights.reduce((a, w, j) => a + w * Number(r[j + 1]), 0);
        const expected = 1 / (1 + Math.exp(-z));
        assert.ok(Math.abs(predictions[k].churn_probability - expected) < 1e-5, `${r[0]}: ${predictions[k].churn_probability} vs ${expected}`);
      });
    });

    test('bad requests get 4xx JSON errors', async () => {
      let r = await request(srv.port, 'POST', '/predict', { body: '{"instances": [', headers: { 'Content-Type': 'application/json' } });
      counts.bad++;
      assert.equal(r.status, 400);
      assert.match(JSON.parse(r.text).error, /invalid JSON/);

      const { senior, ...withoutSenior } = GOOD_INSTANCE;
      r = await postJson(srv.port, { instances: [withoutSenior] });
      counts.bad++;
      assert.equal(r.status, 400);
      assert.match(JSON.parse(r.text).error, /instances\[0\]: missing field senior/);

      r = await postJson(srv.port, { instances: [{ ...GOOD_INSTANCE, favourite_colour: 'teal' }] });
      counts.bad++;
      assert.equal(r.status, 400);
      assert.match(JSON.parse(r.text).error, /unknown field favourite_colour/);

      r = await postJson(srv.port, { instances: [{ ...GOOD_INSTANCE, contract: 'weekly', tenure_months: 'long' }] });
      counts.bad++;
      assert.equal(r.status, 400);
      assert.match(JSON.parse(r.text).error, /contract: unknown value "weekly"/);
      assert.match(JSON.parse(r.text).error, /tenure_months must be a number/);

      r = await postJson(srv.port, { rows: [] });
      counts.bad++;
      assert.equal(r.status, 400);
      assert.match(JSON.parse(r.text).error, /missing field instances/);

      r = await request(srv.port, 'POST', '/predict', { body: Buffer.alloc(2 * 1024 * 1024, 0x61) });
      assert.equal(r.status, 413);
      assert.match(JSON.parse(r.text).error, /too large/);

      r = await request(srv.port, 'GET', '/nope');
      assert.equal(r.status, 404);
      assert.match(JSON.parse(r.text).error, /not found/);

      r = await request(srv.port, 'GET', '/predict');
      assert.equal(r.status, 405);
      assert.match(r.headers.allow, /POST/);

      r = await request(srv.port, 'GET', '/healthz');
      assert.equal(r.status, 200, 'still healthy');
      assert.equal(r.text.trim(), 'ok');
    });

    test('GET /metrics exposes the request histogram, counters and model_info', async () => {
      const r = await request(srv.port, 'GET', '/metrics');
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
      assert.match(r.text, /^# TYPE http_request_duration_seconds histogram$/m);
      assert.match(r.text, /^# TYPE http_requests_total counter$/m);
      assert.match(r.text, /^# TYPE http_request_errors_total counter$/m);
      const s = parseMetrics(r.text);
      const predictOk = { path: '/predict', method: 'POST', status: '200' };
      const predictBad = { path: '/predict', method: 'POST', status: '400' };

      assert.equal(metricValue(s, 'http_requests_total', predictOk), counts.ok);
      assert.equal(metricValue(s, 'http_requests_total', predictBad), counts.bad);
      assert.equal(metricValue(s, 'http_request_errors_total', predictBad), counts.bad);
      assert.equal(metricValue(s, 'http_request_errors_total', predictOk), 0);
      assert.equal(metricValue(s, 'http_requests_total', { path: '/predict', method: 'POST', status: '413' }), 1);
      assert.equal(metricValue(s, 'http_request_errors_total', { path: '/predict', method: 'POST', status: '413' }), 1);
      assert.equal(metricValue(s, 'http_requests_total', { path: 'other', method: 'GET', status: '404' }), 1);
      assert.equal(metricValue(s, 'http_requests_total', { path: '/predict', method: 'GET', status: '405' }), 1);
      assert.ok(metricValue(s, 'http_requests_total', { path: '/healthz', method: 'GET', status: '200' }) >= 2);

      // histogram: cumulative buckets 0.005..10 and +Inf, +Inf == _count == requests_total
      const buckets = s.filter((x) => x.name === 'http_request_duration_seconds_bucket' && Object.entries(predictOk).every(([k, v]) => x.labels[k] === v));
      assert.deepEqual(buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le))), [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, Infinity]);
      for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, 'cumulative buckets');
      assert.equal(buckets.at(-1).value, counts.ok);
      assert.equal(metricValue(s, 'http_request_duration_seconds_count', predictOk), counts.ok);
      assert.ok(metricValue(s, 'http_request_duration_seconds_sum', predictOk) > 0);
      for (const c of s.filter((x) => x.name === 'http_requests_total')) {
        const { path: p, method, status } = c.labels;
        assert.equal(metricValue(s, 'http_request_duration_seconds_count', { path: p, method, status }), c.value);
      }

      const info = s.filter((x) => x.name === 'model_info');
      assert.equal(info.length, 1);
      assert.equal(info[0].value, 1);
      assert.equal(info[0].labels.features, String(readJson(dir, 'models/model.json').features.length));
    });

    test('SIGTERM stops the server within 5 s', async () => {
      const { result, ms } = await stopServer(srv);
      assert.notEqual(result, 'timeout', `still running 5 s after SIGTERM\nstderr:\n${srv.err}`);
      assert.equal(result.code, 0, `exit ${JSON.stringify(result)}`);
      assert.ok(ms < 5000);
      assert.doesNotMatch(srv.err, /Traceback/, 'no stack traces for client errors');
      const lines = srv.err.trim().split('\n');
      assert.ok(lines.some((l) => /"POST \/predict" 413 /.test(l)), 'one log line per request');
      assert.ok(lines.some((l) => /"GET \/nope" 404 /.test(l)));
      assert.ok(!fs.existsSync(path.join(dir, 'src', '__pycache__')), 'no bytecode cache written into the sample');
    });
  });

  test('serve.py --latency-ms delays predictions and --log-inputs records them', async () => {
    const log = path.join(dir, 'logs', 'inputs.jsonl');
    const srv = await startServer(dir, ['--latency-ms', '150', '--log-inputs', 'logs/inputs.jsonl']);
    try {
      const t0 = performance.now();
      const r = await postJson(srv.port, { instances: [GOOD_INSTANCE, { ...GOOD_INSTANCE, senior: 0 }] });
      const ms = performance.now() - t0;
      assert.equal(r.status, 200, r.text);
      assert.ok(ms >= 150, `answered after ${ms} ms`);
      const s = parseMetrics((await request(srv.port, 'GET', '/metrics')).text);
      const labels = { path: '/predict', method: 'POST', status: '200' };
      assert.equal(metricValue(s, 'http_request_duration_seconds_bucket', { ...labels, le: '0.1' }), 0);
      assert.equal(metricValue(s, 'http_request_duration_seconds_bucket', { ...labels, le: '+Inf' }), 1);

      const lines = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(lines.length, 2);
      const { predictions } = JSON.parse(r.text);
      lines.forEach((l, i) => {
        assert.deepEqual(Object.keys(l.instance).sort(), [...RAW_FIELDS].sort());
        assert.equal(l.churn_probability, predictions[i].churn_probability);
        assert.ok(Number.isFinite(l.ts));
      });
    } finally {
      const { result } = await stopServer(srv);
      assert.notEqual(result, 'timeout');
    }
  });

  test('serve.py refuses a bad model with exit code 2', () => {
    fs.writeFileSync(path.join(dir, 'models', 'broken.json'), '{"weights": [1]}');
    const r = py(dir, ['src/serve.py', '--model', 'models/broken.json', '--port', '0'], 20_000);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /not a model written by train\.py/);
  });
});
