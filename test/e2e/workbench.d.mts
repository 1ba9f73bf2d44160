import type { Page } from 'playwright-core';

export const REPO_ROOT: string;
export function codeServerBin(): string;
export function workbenchAvailable(): boolean;
export function startWorkbench(opts: { workspace: string; extension?: string; untrusted?: boolean; viewport?: { width: number; height: number } }): Promise<{ page: Page; logs: string; stop: () => Promise<void> }>;
