/**
 * The @vscode-elements/elements components the panels use, registered once (each import defines its
 * custom element). Import this module from a panel's main.ts; add a component here when a panel needs it.
 * Only the components listed are bundled, not the whole library.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import '@vscode-elements/elements/dist/vscode-tabs/index.js';
import '@vscode-elements/elements/dist/vscode-tab-header/index.js';
import '@vscode-elements/elements/dist/vscode-tab-panel/index.js';
import '@vscode-elements/elements/dist/vscode-split-layout/index.js';
import '@vscode-elements/elements/dist/vscode-icon/index.js';
import '@vscode-elements/elements/dist/vscode-toolbar-button/index.js';
import '@vscode-elements/elements/dist/vscode-divider/index.js';
// Codicons: bundled into the panel's CSS file (the font is emitted next to it); the page links that CSS
// with id="vscode-codicon-stylesheet", which <vscode-icon> looks for.
import '@vscode/codicons/dist/codicon.css';
import './base.css';

export const ELEMENTS_REGISTERED = true;
