-- Drives Neovim's LSP client against the mlpipeline server and writes what it saw as JSON, then quits.
-- Every wait is bounded, so a server that does not answer gives a result with an error, not a hang.
--
--   MLP_SPEC     the spec to open (it has an undefined step in `needs`)
--   MLP_RESULT   where to write the JSON result
--   MLP_TIMEOUT  milliseconds to wait for each answer (default 10000)
local spec = assert(os.getenv('MLP_SPEC'), 'MLP_SPEC is not set')
local result_path = assert(os.getenv('MLP_RESULT'), 'MLP_RESULT is not set')
local timeout = tonumber(os.getenv('MLP_TIMEOUT') or '10000')

local result = { nvim = tostring(vim.version().major) .. '.' .. tostring(vim.version().minor) .. '.' .. tostring(vim.version().patch) }

local function write_and_quit()
  local f = io.open(result_path, 'w')
  if f then
    f:write(vim.fn.json_encode(result))
    f:close()
  end
  vim.cmd('qall!')
end

--- The first result of a request to the attached clients, or nil and an error.
local function request(bufnr, method, params)
  local responses, err = vim.lsp.buf_request_sync(bufnr, method, params, timeout)
  if not responses then
    return nil, method .. ': ' .. tostring(err or 'no answer')
  end
  for _, r in pairs(responses) do
    if r.error then
      return nil, method .. ': ' .. vim.inspect(r.error)
    end
    return r.result
  end
  return nil, method .. ': no client answered'
end

--- Line (0-based) and column of the first occurrence of `needle` in the buffer.
local function find(bufnr, needle)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    local col = line:find(needle, 1, true)
    if col then
      return i - 1, col - 1
    end
  end
  error('not in the buffer: ' .. needle)
end

local ok, err = pcall(function()
  vim.cmd('edit ' .. vim.fn.fnameescape(spec))
  local bufnr = vim.api.nvim_get_current_buf()
  local uri = vim.uri_from_bufnr(bufnr)

  -- 1. Diagnostics arrive and carry the MLP code at the right place.
  local got = vim.wait(timeout, function()
    return #vim.diagnostic.get(bufnr) > 0
  end, 50)
  result.attached = #vim.lsp.buf_get_clients(bufnr) > 0
  if not got then
    error('no diagnostics within ' .. timeout .. ' ms')
  end
  result.diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(result.diagnostics, { code = d.code, lnum = d.lnum, col = d.col, end_lnum = d.end_lnum, end_col = d.end_col, severity = d.severity, message = d.message })
  end

  -- 2. Completion in `needs: [` offers the step names.
  local line, col = find(bufnr, 'needs: [')
  local completion, cerr = request(bufnr, 'textDocument/completion', { textDocument = { uri = uri }, position = { line = line, character = col + #'needs: [' } })
  if not completion then
    error(cerr)
  end
  local items = completion.items or completion
  result.completion = {}
  for _, item in ipairs(items) do
    table.insert(result.completion, item.label)
  end

  -- 3. Definition of the step used in ${steps.prepare.outputs...} jumps to the step.
  local dline, dcol = find(bufnr, '${steps.prepare')
  local locations, derr = request(bufnr, 'textDocument/definition', { textDocument = { uri = uri }, position = { line = dline, character = dcol + #'${steps.' + 1 } })
  if not locations then
    error(derr)
  end
  local location = locations[1] or locations
  vim.lsp.util.jump_to_location(location, 'utf-16')
  local cursor = vim.api.nvim_win_get_cursor(0)
  result.definition = { line = cursor[1] - 1, col = cursor[2], text = vim.api.nvim_get_current_line() }

  -- 4. Hover on a param shows its value.
  local hline, hcol = find(bufnr, '${params.lr}')
  local hover = request(bufnr, 'textDocument/hover', { textDocument = { uri = uri }, position = { line = hline, character = hcol + #'${params.' } })
  result.hover = hover and hover.contents and hover.contents.value or vim.NIL
end)

if not ok then
  result.error = tostring(err)
end
write_and_quit()
