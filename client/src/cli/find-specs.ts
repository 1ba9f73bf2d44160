import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const SPEC_NAME = /^(mlpipeline|.+\.mlpipeline)\.ya?ml$/;
const SKIP_DIRS = new Set(['node_modules', '.git', '.mlpipeline', 'dist', 'out', '.venv', 'venv', '__pycache__']);

/** Spec files below a folder, in a stable order. The same names the extension's document selector matches. */
export function findSpecs(root: string, maxDepth = 8): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let list;
    try {
      list = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // Unreadable folders are skipped, as `git ls-files` would.
    }
    for (const e of list) {
      if (e.isDirectory()) {
        if (depth < maxDepth && !SKIP_DIRS.has(e.name)) walk(join(dir, e.name), depth + 1);
      } else if (e.isFile() && SPEC_NAME.test(e.name)) {
        found.push(join(dir, e.name));
      }
    }
  };
  walk(root, 0);
  return found.sort((a, b) => relative(root, a).localeCompare(relative(root, b)));
}
