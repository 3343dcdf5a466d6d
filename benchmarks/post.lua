-- wrk script: POSTs of one workload (see benchmarks/workloads.py), each with a distinct number.
-- Arguments after `--`: the Content-Type, the body pattern ("{i}" is the request's number),
-- then any extra headers as "Name: value".
local counter = 0
local pattern = ""
local headers = {}

init = function(args)
  headers["Content-Type"] = args[1]
  pattern = args[2]
  for i = 3, #args do
    local name, value = args[i]:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
end

request = function()
  counter = counter + 1
  local body = pattern:gsub("{i}", tostring(counter))
  return wrk.format("POST", nil, headers, body)
end
