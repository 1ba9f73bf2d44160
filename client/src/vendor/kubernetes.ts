// Bundled on its own as dist/vendor/kubernetes.js (esbuild.mjs): the Kubernetes client is most of the
// extension's code by size, so the extension and the CLI load it with require() only when a step or a
// deployment first talks to a cluster. Activation never parses it.
export * from '@kubernetes/client-node';
