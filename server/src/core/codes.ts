/**
 * Every problem the validator can report, with a stable code. Codes are part of the public contract:
 * they appear in the editor, in `mlpipeline validate` output (text, JSON, SARIF) and in docs, so a code is
 * never reused for a different meaning. Add new ones at the end of their block.
 */
export type Severity = 'error' | 'warning' | 'info' | 'hint';

export interface CodeInfo {
  /** Default severity; settings may lower hints further, never raise. */
  severity: Severity;
  /** Short title, used as the SARIF rule name and in docs. */
  title: string;
}

export const CODES = {
  // Document-level problems: the text could not be read as a spec at all.
  MLP001: { severity: 'error', title: 'YAML syntax error' },
  MLP002: { severity: 'error', title: 'Duplicate key' },
  MLP003: { severity: 'error', title: 'Document exceeds a safety limit (size, nesting or aliases)' },
  MLP004: { severity: 'error', title: 'Document is not a mapping' },
  MLP005: { severity: 'error', title: 'File is not valid UTF-8 text' },
  MLP006: { severity: 'warning', title: 'More than one YAML document in the file' },

  // Structure, from the JSON Schema (schemas/mlpipeline.schema.json).
  MLP010: { severity: 'error', title: 'Missing required property' },
  MLP011: { severity: 'error', title: 'Unknown property' },
  MLP012: { severity: 'error', title: 'Wrong value type' },
  MLP013: { severity: 'error', title: 'Value not allowed' },
  MLP014: { severity: 'error', title: 'Value does not match the expected format' },
  MLP015: { severity: 'error', title: 'Value out of range' },
  MLP016: { severity: 'error', title: 'Invalid name' },
  MLP019: { severity: 'error', title: 'Schema violation' },

  // References between named things.
  MLP020: { severity: 'error', title: 'Undefined step' },
  MLP021: { severity: 'error', title: 'Undefined compute target' },
  MLP022: { severity: 'error', title: 'Undefined param' },
  MLP023: { severity: 'error', title: 'Undefined dataset' },
  MLP024: { severity: 'error', title: 'Undefined step output' },
  MLP025: { severity: 'error', title: 'Undefined secret' },
  MLP026: { severity: 'error', title: 'Undefined deployment' },
  MLP027: { severity: 'error', title: 'Undefined monitor' },
  MLP028: { severity: 'error', title: 'Malformed or unknown ${...} reference' },
  MLP029: { severity: 'error', title: 'Reference used where it has no meaning' },

  // The pipeline graph.
  MLP030: { severity: 'error', title: 'Dependency cycle' },
  MLP031: { severity: 'error', title: 'Undefined metric' },
  MLP032: { severity: 'error', title: 'More than one default compute target' },
  MLP033: { severity: 'warning', title: 'Secret passed on the command line' },

  // Resource and duration syntax.
  MLP040: { severity: 'error', title: 'Invalid GPU request' },
  MLP041: { severity: 'error', title: 'Invalid memory quantity' },
  MLP042: { severity: 'error', title: 'Invalid CPU quantity' },
  MLP043: { severity: 'error', title: 'Invalid duration' },
  MLP044: { severity: 'warning', title: 'Suspicious resource amount' },

  // Types of params, defaults, sweeps and gates.
  MLP050: { severity: 'error', title: 'Param default does not match its type or bounds' },
  MLP051: { severity: 'error', title: 'Sweep value does not match the param type or bounds' },
  MLP052: { severity: 'error', title: 'Invalid gate or objective expression' },
  MLP053: { severity: 'error', title: 'Setting does not apply to this compute type' },

  // Hints.
  MLP060: { severity: 'hint', title: 'Unused param' },
  MLP061: { severity: 'hint', title: 'Unused dataset' },
  MLP062: { severity: 'hint', title: 'Unused secret' },
} as const satisfies Record<string, CodeInfo>;

export type Code = keyof typeof CODES;
