// Creates the one Mocha instance of the e2e suite and installs the BDD globals (describe, it,
// before, ...) on globalThis. index.ts imports this module FIRST, so the globals exist when the
// test modules it imports next are evaluated. That keeps working when esbuild bundles index.ts
// and every test into a single file (ES imports are evaluated in order), and when tsc compiles
// them to separate CommonJS files.
import Mocha from 'mocha';

export const mocha = new Mocha({
  ui: 'bdd',
  reporter: 'spec',
  // The extension host's console is not a TTY: no ANSI colours in CI logs.
  color: false,
  // Language server start-up and diagnostics take seconds, not mocha's default 2 s.
  timeout: 60_000,
});

// MLP_E2E_GREP=<text> runs only the tests whose full title contains <text> (the extension host
// inherits code-server's environment, which inherits the harness's).
if (process.env.MLP_E2E_GREP) {
  mocha.grep(process.env.MLP_E2E_GREP);
}

// What `mocha` itself does before it requires each spec file: bind describe/it/... to a context.
mocha.suite.emit('pre-require', globalThis, __filename, mocha);
