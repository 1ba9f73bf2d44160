/**
 * Artifact stores and remote datasets. `createArtifactStore` picks the implementation from the URI; the S3
 * one loads the AWS SDK only when it first talks to S3.
 */
import { LocalArtifactStore } from './local';
import { S3ArtifactStore } from './s3';
import { isS3Uri } from './s3-uri';
import type { ArtifactStore, S3StoreOptions } from './types';

export * from './types';
export { isS3Uri, parseS3Uri, formatS3Uri } from './s3-uri';
export { LocalArtifactStore } from './local';
export { S3ArtifactStore, hashS3Dataset, materializeS3Dataset, listingHash, describeS3Error, resolveS3Options, createS3Client, type S3DatasetListing } from './s3';
export { remoteStepEnv, stagedOutputUri, stagedFilesUri } from './contract';
export { adoptRemoteOutputs, clearStaging, remoteStepProblem, stageRemoteStep, stagingFromEnv, INPUTS_STEP, type RemoteStaging } from './remote-step';

/** `s3://bucket/prefix/` -> S3, anything else -> a local folder (relative to `workspace`). */
export function createArtifactStore(uri: string, workspace: string, s3?: S3StoreOptions): ArtifactStore {
  return isS3Uri(uri) ? new S3ArtifactStore(uri, s3) : new LocalArtifactStore(uri, workspace);
}
