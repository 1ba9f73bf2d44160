import * as vscode from 'vscode';

/** What a trust-gated command returns when it refuses (tests read it; users see the message). */
export interface Refused {
  refused: 'untrusted';
  message: string;
}

export const UNTRUSTED_MESSAGE =
  'ML Pipeline: running pipelines needs a trusted workspace, because steps execute the commands in the spec. ' +
  'Validation, completion and past runs work in Restricted Mode.';

/** Shows why nothing ran, with a button to trust the folder; does not wait for the user. */
export function refuseUntrusted(what: string): Refused {
  const message = `${UNTRUSTED_MESSAGE} (${what} was not started.)`;
  void vscode.window.showWarningMessage(message, 'Manage Workspace Trust').then((choice) => {
    if (choice) void vscode.commands.executeCommand('workbench.trust.manage');
  });
  return { refused: 'untrusted', message };
}
