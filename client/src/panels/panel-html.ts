/**
 * The one builder of panel HTML (used by the extension and by the browser tests, so tests run the same
 * page). No `vscode` import: the caller passes the webview's cspSource and the URIs as strings.
 *
 * CSP: nothing loads unless allowed; scripts only with this load's nonce (no 'unsafe-eval', no
 * 'unsafe-inline'); styles and fonts only from the extension's webview folder (cspSource).
 */
import { randomBytes } from 'node:crypto';

export interface PanelHtmlOptions {
  /** `webview.cspSource` (the origin webview resources are served from). */
  cspSource: string;
  /** The bundle, `dist/webviews/<panel>.js`, as a webview URI. */
  scriptUri: string;
  /** Its stylesheet, `dist/webviews/<panel>.css` (codicons included), as a webview URI. */
  styleUri: string;
  title: string;
  /** A fresh nonce per load; makeNonce() when omitted. */
  nonce?: string;
  /** Shown until the bundle has rendered (and if it fails to load). */
  loadingText?: string;
}

export function makeNonce(): string {
  return randomBytes(18).toString('base64').replace(/[+/=]/g, (c) => ({ '+': '-', '/': '_', '=': '' })[c] ?? '');
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** The Content-Security-Policy of every panel. */
export function panelCsp(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `font-src ${cspSource}`,
    `img-src ${cspSource} data:`,
  ].join('; ');
}

export function buildPanelHtml(o: PanelHtmlOptions): { html: string; nonce: string } {
  const nonce = o.nonce ?? makeNonce();
  if (!/^[A-Za-z0-9_-]{16,}$/.test(nonce)) throw new Error('buildPanelHtml: the nonce must be 16+ URL-safe characters');
  // cspSource comes from the webview: source expressions such as `'self' https://*.vscode-cdn.net`.
  // Refuse anything that could end the directive or add another one.
  if (!o.cspSource.trim().split(/ +/).every((t) => /^('self'|[^\s;,'"]+)$/.test(t))) throw new Error(`buildPanelHtml: unexpected cspSource ${JSON.stringify(o.cspSource)}`);
  const e = escapeHtml;
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${e(panelCsp(o.cspSource, nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${e(o.title)}</title>
<link rel="stylesheet" id="vscode-codicon-stylesheet" href="${e(o.styleUri)}" nonce="${nonce}">
</head>
<body>
<div id="root" data-loading="true">${e(o.loadingText ?? 'Loading…')}</div>
<script nonce="${nonce}" src="${e(o.scriptUri)}"></script>
</body>
</html>`;
  return { html, nonce };
}
