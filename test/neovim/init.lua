-- A minimal Neovim (0.7+) configuration that runs the mlpipeline language server for specs, the way a
-- user without plugins would set it up. Neovim 0.7 has vim.lsp.start_client (vim.lsp.start came in 0.8).
--
--   MLP_NODE    the node executable (default: node)
--   MLP_SERVER  the bundled server (default: dist/server/server.js)
local node = os.getenv('MLP_NODE') or 'node'
local server = os.getenv('MLP_SERVER') or 'dist/server/server.js'

vim.o.swapfile = false
vim.o.shadafile = 'NONE'

local client_id = nil

local function attach(bufnr)
  if client_id == nil or vim.lsp.get_client_by_id(client_id) == nil then
    client_id = vim.lsp.start_client({
      name = 'mlpipeline',
      cmd = { node, server, '--stdio' },
      root_dir = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(bufnr), ':p:h'),
      -- Answers the server's workspace/configuration request for the `mlpipeline` section.
      settings = { mlpipeline = { validation = { enable = true, unusedHints = true } } },
    })
  end
  if client_id then
    vim.lsp.buf_attach_client(bufnr, client_id)
  end
end

vim.api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile' }, {
  pattern = { 'mlpipeline.yaml', 'mlpipeline.yml', '*.mlpipeline.yaml', '*.mlpipeline.yml' },
  callback = function(args)
    attach(args.buf)
  end,
})
