import { compare, parseGate, type GateClause } from '../../../../server/src/core/deploy-plan';
import type { RunRecord } from '../records';

/** One gate clause checked against a run: the number it saw (or why there is none). */
export interface GateCheck {
  clause: GateClause;
  actual?: number;
  pass: boolean;
  /** Why the clause could not be checked (missing step/metric). */
  missing?: string;
}

export interface GateResult {
  pass: boolean;
  checks: GateCheck[];
  /** One line per failed clause with the numbers, for refusals. */
  message: string;
}

/**
 * Checks `gate` (the grammar the schema and semantic checks accept; parsed, never evaluated as code)
 * against the metrics a run recorded. A metric the run does not have fails the gate: deploying on a
 * missing number would defeat the point of the gate.
 */
export function evaluateGate(gate: string | GateClause[], run: Pick<RunRecord, 'id' | 'steps'>): GateResult {
  let clauses: GateClause[];
  if (typeof gate === 'string') {
    const parsed = parseGate(gate);
    if (!parsed.ok) return { pass: false, checks: [], message: `The gate cannot be read: ${parsed.error}` };
    clauses = parsed.clauses;
  } else clauses = gate;
  const checks: GateCheck[] = clauses.map((clause) => {
    const step = run.steps[clause.step];
    if (!step) return { clause, pass: false, missing: `run ${run.id} has no step \`${clause.step}\`` };
    const actual = step.metrics?.[clause.metric];
    if (typeof actual !== 'number' || !Number.isFinite(actual)) {
      const have = Object.keys(step.metrics ?? {});
      return { clause, pass: false, missing: `step \`${clause.step}\` of run ${run.id} recorded no metric \`${clause.metric}\`${have.length ? ` (it has ${have.join(', ')})` : ''}` };
    }
    return { clause, actual, pass: compare(actual, clause.op, clause.value) };
  });
  const failed = checks.filter((c) => !c.pass);
  const message = failed
    .map((c) => (c.missing ? `${c.clause.text}: ${c.missing}` : `${c.clause.text}: ${c.clause.step}.${c.clause.metric} is ${fmt(c.actual!)}, needs ${c.clause.op} ${fmt(c.clause.value)}`))
    .join('\n');
  return { pass: failed.length === 0, checks, message };
}

function fmt(n: number): string {
  return String(Number(n.toPrecision(6)));
}
