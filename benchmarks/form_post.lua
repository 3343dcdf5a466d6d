-- wrk script: form POSTs through the seed's dynamic template, each with a distinct model name.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local counter = 0
request = function()
  counter = counter + 1
  local body = "model=m" .. counter .. "&friendly_name=Model+" .. counter
  return wrk.format(nil, nil, nil, body)
end
