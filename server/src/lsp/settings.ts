/** The `mlpipeline.*` settings the server reads, pulled per document (workspace/configuration). */
export interface ServerSettings {
  validation: {
    enable: boolean;
    unusedHints: boolean;
    /** KiB; larger files get one MLP003 problem instead of being parsed. */
    maxFileSize: number;
  };
}

export const DEFAULT_SETTINGS: ServerSettings = {
  validation: { enable: true, unusedHints: true, maxFileSize: 2048 },
};

/** Settings come from the client as untyped JSON: take what is well-formed, default the rest. */
export function readSettings(raw: unknown): ServerSettings {
  const v = (raw as { validation?: Record<string, unknown> } | null)?.validation ?? {};
  const d = DEFAULT_SETTINGS.validation;
  return {
    validation: {
      enable: typeof v.enable === 'boolean' ? v.enable : d.enable,
      unusedHints: typeof v.unusedHints === 'boolean' ? v.unusedHints : d.unusedHints,
      maxFileSize: typeof v.maxFileSize === 'number' && v.maxFileSize > 0 ? v.maxFileSize : d.maxFileSize,
    },
  };
}
