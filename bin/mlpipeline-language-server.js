#!/usr/bin/env node
// Standalone language server for any LSP client: mlpipeline-language-server --stdio
require('../dist/server/server.js');
