// User settings for the VS Code instance the e2e suite runs in (code-server or desktop VS Code):
// a quiet workbench (no welcome page, telemetry, update or recommendation popups, no auto-save)
// so nothing steals focus from the editors the tests open or changes files behind their back.
export function testUserSettings({ untrusted = false } = {}) {
  return {
    'telemetry.telemetryLevel': 'off',
    'workbench.startupEditor': 'none',
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'extensions.ignoreRecommendations': true,
    'extensions.autoUpdate': false,
    'extensions.autoCheckUpdates': false,
    'update.mode': 'none',
    'git.enabled': false,
    'npm.autoDetect': 'off',
    'window.restoreWindows': 'none',
    // VS Code for the web auto-saves by default; the tests check edits "as the user types".
    'files.autoSave': 'off',
    // Workspace trust: enabled only for --untrusted runs, where the (never trusted) folder then
    // stays in Restricted Mode because there is no startup prompt to trust it.
    'security.workspace.trust.enabled': untrusted,
    'security.workspace.trust.startupPrompt': 'never',
    'security.workspace.trust.banner': 'never',
    'security.workspace.trust.emptyWindow': false,
  };
}
