import { formatValue as baseFormat } from '../runtime/run-report';

/** Terminal output helpers: colour only on a TTY without NO_COLOR, and nothing user-written is interpreted. */
export const useColor = process.stdout.isTTY === true && !process.env.NO_COLOR;

export function paint(code: string, s: string): string {
  return useColor ? `\x1b[${code}m${s}\x1b[0m` : s;
}

/** Control characters in user text (run labels, log lines) cannot move the cursor or rewrite the screen. */
export function safe(text: string): string {
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f\x9b]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export { formatDuration as duration, textTable as table } from '../runtime/run-report';

export function formatValue(v: unknown): string {
  return safe(baseFormat(v));
}
