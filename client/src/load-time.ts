/**
 * Imported first by extension.ts, so this is the first line of the bundle that runs: the start of the
 * activation time the extension reports (module load to the end of activate()).
 */
export const moduleLoadedAt = performance.now();
