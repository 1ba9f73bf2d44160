/**
 * Which run's model is being deployed: the model file on disk must be the one a run recorded (outputs are
 * not copied into a content store, so a later run with other params may have overwritten it). The gate
 * is then checked against that run's metrics.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedDeployment } from '../../../../server/src/core/deploy-plan';
import { ContentHasher } from '../hashing';
import type { RunRecord } from '../records';
import { RunStore } from '../run-store';
import type { ModelArtifact } from './deploy-target';
import { evaluateGate, type GateResult } from './gate';

export type SourceResult =
  | { ok: true; model: ModelArtifact; run?: RunRecord; gate?: GateResult }
  | { ok: false; error: string; run?: RunRecord; gate?: GateResult; model?: ModelArtifact };

export async function resolveSource(workspace: string, d: ResolvedDeployment, runPrefix?: string): Promise<SourceResult> {
  if (d.model.kind === 's3') return { ok: false, error: `The model of ${d.name} is ${d.model.uri}; the local target serves files in the workspace. Download it first, or point \`model\` at a step output.` };
  const rel = d.model.path;
  const abs = join(workspace, rel);
  if (!existsSync(abs)) {
    return { ok: false, error: d.model.kind === 'step-output' ? `${rel} does not exist yet. Run the pipeline first: \`mlpipeline run\` (it produces ${d.model.step}.${d.model.output}).` : `The model file ${rel} does not exist.` };
  }
  const hasher = new ContentHasher({ root: workspace });
  const current = (await hasher.hashPath(rel)).hash;
  await hasher.save().catch(() => undefined);
  const store = new RunStore(join(workspace, '.mlpipeline', 'runs'));
  const outputOf = (r: RunRecord): string | undefined => {
    if (d.model.kind !== 'step-output') return undefined;
    const st = r.steps[d.model.step];
    if (!st || (st.status !== 'succeeded' && st.status !== 'cached')) return undefined;
    return st.outputs[d.model.output]?.hash;
  };
  let run: RunRecord | undefined;
  if (runPrefix) {
    let id: string;
    try {
      id = await store.resolveId(runPrefix);
    } catch (e) {
      return { ok: false, error: `${(e as Error).message} List runs with \`mlpipeline runs\`.` };
    }
    run = await store.get(id);
    if (!run) return { ok: false, error: `Run ${id} could not be read.` };
    if (d.model.kind === 'step-output') {
      const h = outputOf(run);
      if (!h) return { ok: false, run, error: `Run ${run.id} did not produce ${d.model.step}.${d.model.output} (step ${d.model.step} is ${run.steps[d.model.step]?.status ?? 'not in it'}).` };
      if (h !== current) return { ok: false, run, error: `${rel} on disk (sha256 ${current.slice(0, 12)}) is not what run ${run.id} wrote (${h.slice(0, 12)}): a later run overwrote it. Rerun that run's params (\`mlpipeline run\`), or deploy the run whose model is on disk (leave out --run).` };
    }
  } else {
    const summaries = (await store.list()).sort((a, b) => b.startedAt.localeCompare(a.startedAt) || (a.id < b.id ? 1 : -1));
    for (const s of summaries) {
      const r = await store.get(s.id);
      if (!r) continue;
      if (d.model.kind === 'step-output' ? outputOf(r) === current : r.status === 'succeeded') {
        run = r;
        break;
      }
    }
    if (!run && d.model.kind === 'step-output') return { ok: false, error: `No recorded run produced the ${rel} that is on disk (sha256 ${current.slice(0, 12)}), so its metrics (and the gate) are unknown. Run the pipeline: \`mlpipeline run\`.` };
  }
  const model: ModelArtifact = { path: abs, hash: current, ...(d.model.kind === 'step-output' ? { output: `${d.model.step}.${d.model.output}` } : {}) };
  if (!d.gate) return { ok: true, model, run };
  if (!run) return { ok: false, model, error: `Deployment ${d.name} has a gate (${d.gate.text}) but no run to check it against. Run the pipeline first.` };
  const gate = evaluateGate(d.gate.clauses, run);
  if (!gate.pass) return { ok: false, model, run, gate, error: `The gate refused the deploy of ${d.name} (model from run ${run.id}):\n${gate.message}` };
  return { ok: true, model, run, gate };
}
