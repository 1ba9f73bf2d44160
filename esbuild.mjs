// One build for every bundle: the extension, the language server, the CLI, the in-editor test suite
// and the webview panels. `node esbuild.mjs [--watch] [--production]`.
import * as esbuild from 'esbuild';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

const common = {
  bundle: true,
  minify: production,
  sourcemap: production ? false : 'linked',
  sourcesContent: false,
  logLevel: 'info',
  define: { MLPIPELINE_VERSION: JSON.stringify(pkg.version) },
};

/** Node bundles: CommonJS, since VS Code's extension host loads the extension with require(). */
const node = { ...common, platform: 'node', format: 'cjs', target: 'node20' };

/**
 * The Kubernetes client and the AWS SDK are big (several MB) and needed only when a cluster or S3 is
 * used: they are bundled on their own into dist/vendor/, and the bundles below require() them from
 * there at first use (the code imports them with dynamic import()), so activation never parses them.
 */
const VENDOR = { '@kubernetes/client-node': 'kubernetes', '@aws-sdk/client-s3': 's3' };
const vendorSplit = (fromDir) => ({
  name: 'vendor-split',
  setup(build) {
    build.onResolve({ filter: /^(@kubernetes\/client-node|@aws-sdk\/client-s3)$/ }, (args) => ({ path: `${fromDir}/vendor/${VENDOR[args.path]}.js`, external: true }));
  },
});
// import() of a vendor bundle becomes require(): the vendor bundles are CommonJS like the rest.
const lazyRequire = { supported: { 'dynamic-import': false } };

const builds = [
  // The extension host provides `vscode`; nothing else is external, so the .vsix needs no node_modules.
  { ...node, entryPoints: { 'client/extension': 'client/src/extension.ts' }, external: ['vscode'], plugins: [vendorSplit('..')], ...lazyRequire },
  // The server never imports `vscode`: it runs in any editor.
  { ...node, entryPoints: { 'server/server': 'server/src/lsp/main.ts' } },
  { ...node, entryPoints: { 'cli/main': 'client/src/cli/main.ts' }, plugins: [vendorSplit('..')], ...lazyRequire },
  { ...node, entryPoints: { 'vendor/kubernetes': 'client/src/vendor/kubernetes.ts', 'vendor/s3': 'client/src/vendor/s3.ts' } },
];

if (existsSync('test/e2e/suite/index.ts')) {
  // mocha stays external: it resolves from node_modules when the extension host loads the suite.
  builds.push({ ...node, entryPoints: { 'test/e2e/suite/index': 'test/e2e/suite/index.ts' }, external: ['vscode', 'mocha'], minify: false, plugins: [vendorSplit('../../..')], ...lazyRequire });
}

// Each panel is a folder under webviews/src with a main.ts; they run in the browser sandbox of a webview.
const panels = existsSync('webviews/src') ? readdirSync('webviews/src', { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(`webviews/src/${d.name}/main.ts`)) : [];
if (panels.length) {
  builds.push({
    ...common,
    platform: 'browser',
    format: 'iife',
    target: 'chrome120',
    entryPoints: Object.fromEntries(panels.map((d) => [`webviews/${d.name}`, `webviews/src/${d.name}/main.ts`])),
    loader: { '.ttf': 'file', '.woff2': 'file' },
    // Fonts (codicons) land beside the bundles: the webview may read only dist/webviews.
    assetNames: 'webviews/[name]-[hash]',
  });
}

const contexts = await Promise.all(builds.map((b) => esbuild.context({ ...b, outdir: 'dist' })));
if (watch) {
  await Promise.all(contexts.map((c) => c.watch()));
} else {
  try {
    await Promise.all(contexts.map((c) => c.rebuild()));
  } finally {
    await Promise.all(contexts.map((c) => c.dispose()));
  }
}
