import { simpleGit } from 'simple-git';
import type { GitProvenance } from './records';

/** The commit, branch and dirty state of the folder's repository; null outside git or before the first commit. */
export async function gitProvenance(dir: string): Promise<GitProvenance | null> {
  try {
    const git = simpleGit({ baseDir: dir, timeout: { block: 10_000 } });
    if (!(await git.checkIsRepo())) return null;
    const commit = (await git.revparse(['HEAD'])).trim();
    const branch = (await git.revparse(['--abbrev-ref', 'HEAD'])).trim();
    const status = await git.status();
    return { commit, branch: branch === 'HEAD' ? null : branch, dirty: !status.isClean() };
  } catch {
    return null; // No commits yet, git missing, or an unreadable repository: runs still work.
  }
}
