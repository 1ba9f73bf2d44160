// Bundled on its own as dist/vendor/s3.js (esbuild.mjs), loaded only when an s3:// dataset or artifact is
// first used; see vendor/kubernetes.ts for why.
export * from '@aws-sdk/client-s3';
