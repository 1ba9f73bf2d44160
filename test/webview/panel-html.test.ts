/** The one builder of panel HTML: CSP, nonce per load, escaping. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildPanelHtml, panelCsp } from '../../client/src/panels/panel-html';

const base = { cspSource: "'self' https://*.vscode-cdn.net", scriptUri: 'https://file+.vscode-resource.vscode-cdn.net/ext/dist/webviews/x.js', styleUri: 'https://file+.vscode-resource.vscode-cdn.net/ext/dist/webviews/x.css', title: 'X' };

describe('buildPanelHtml', () => {
  it('sets a strict CSP with a fresh nonce on every load', () => {
    const a = buildPanelHtml(base);
    const b = buildPanelHtml(base);
    assert.notEqual(a.nonce, b.nonce);
    assert.match(a.nonce, /^[A-Za-z0-9_-]{24}$/);
    const csp = panelCsp(base.cspSource, a.nonce);
    assert.equal(csp, `default-src 'none'; script-src 'nonce-${a.nonce}'; style-src ${base.cspSource} 'nonce-${a.nonce}'; font-src ${base.cspSource}; img-src ${base.cspSource} data:`);
    assert.ok(a.html.includes(`content="${csp.replace(/'/g, '&#39;')}"`));
    assert.doesNotMatch(a.html, /unsafe-(eval|inline)/);
    assert.equal(a.html.match(/<script /g)?.length, 1);
    assert.ok(a.html.includes(`<script nonce="${a.nonce}" src="${base.scriptUri}"></script>`));
  });
  it('escapes what it interpolates and refuses a cspSource that would add directives', () => {
    const { html } = buildPanelHtml({ ...base, title: '</title><script>alert(1)</script>' });
    assert.ok(html.includes('<title>&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;</title>'));
    assert.throws(() => buildPanelHtml({ ...base, cspSource: "https://x; script-src 'unsafe-inline'" }), /unexpected cspSource/);
    assert.throws(() => buildPanelHtml({ ...base, cspSource: "'unsafe-inline'" }), /unexpected cspSource/);
    assert.throws(() => buildPanelHtml({ ...base, nonce: 'short' }), /nonce/);
  });
});
