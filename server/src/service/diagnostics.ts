import { DiagnosticSeverity, DiagnosticTag, type Diagnostic } from 'vscode-languageserver';
import type { Problem } from '../core/problems';
import type { Severity } from '../core/codes';

const SEVERITY: Record<Severity, DiagnosticSeverity> = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  info: DiagnosticSeverity.Information,
  hint: DiagnosticSeverity.Hint,
};

/** Problems as LSP diagnostics: same code, message and range the CLI prints. */
export function toDiagnostics(problems: readonly Problem[], uri: string): Diagnostic[] {
  return problems.map((p) => {
    const d: Diagnostic = { range: p.range, severity: SEVERITY[p.severity], code: p.code, source: 'mlpipeline', message: p.message };
    if (p.unnecessary) d.tags = [DiagnosticTag.Unnecessary];
    if (p.related?.length) d.relatedInformation = p.related.map((r) => ({ location: { uri, range: r.range }, message: r.message }));
    return d;
  });
}
