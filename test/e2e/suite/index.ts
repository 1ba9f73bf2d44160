// Mocha entry that runs inside the VS Code extension host (passed as extensionTestsPath by
// test/e2e/run-extension-tests.mjs or test/e2e/run-electron.mjs). The host calls run() and
// reports the outcome: resolve = exit code 0, reject = exit code 1.
//
// The test files are imported statically so esbuild can bundle everything into one
// dist/test/e2e/suite/index.js (vscode external). Order matters: mochaSetup must come first.
// Add each new *.test.ts here.
import { mocha } from './mochaSetup';
import './diagnostics.test';
import './commands.test';
import './features.test';
import './panels.test';
import './panels-b.test';
import './workflows.test';
import './alerts.test';

import * as fs from 'fs';
import * as path from 'path';

// When the suite is compiled file by file instead of bundled, also pick up any *.test.js next to
// this file that is not imported above (in the bundle there are none, so this does nothing).
function addUnimportedTestFiles(): void {
  let names: string[] = [];
  try {
    names = fs.readdirSync(__dirname).filter((n) => n.endsWith('.test.js'));
  } catch {
    return;
  }
  for (const name of names.sort()) {
    const file = path.join(__dirname, name);
    if (require.cache[file]) continue; // already imported statically
    mocha.suite.emit('pre-require', globalThis, file, mocha);
    require(file);
  }
}

export function run(): Promise<void> {
  addUnimportedTestFiles();
  return new Promise<void>((resolve, reject) => {
    try {
      mocha.run((failures) => {
        // The spec reporter has printed each test through console.log; the harness forwards the
        // extension host's console to its stdout. One summary line makes grepping CI logs easy.
        console.log(`mlpipeline-e2e: ${failures} failure(s)`);
        if (failures > 0) {
          reject(new Error(`${failures} e2e test(s) failed`));
        } else {
          resolve();
        }
      });
    } catch (err) {
      console.error(err);
      reject(err);
    }
  });
}
