-- Argo CD health of a Swarm (swarm.cfn.dev/v1alpha1), from the phase the
-- operator decides: Pending, Running, FallingBack -> Progressing;
-- Succeeded -> Healthy; Failed -> Degraded. Lua 5.1 (gopher-lua in Argo CD).
local hs = {}

local function condition(status, type)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

-- Agents done so far, else what the operator says it waits for.
local function progress(status)
  local a = status.agents
  if a == nil or a.total == nil then
    local reconciling = condition(status, "Reconciling")
    return (reconciling and (": " .. reconciling.message)) or ""
  end
  return ": " .. tostring((a.completed or 0) + (a.failed or 0)) .. "/" .. tostring(a.total) .. " agents done (" .. tostring(a.completed or 0) .. " completed, " .. tostring(a.failed or 0) .. " failed)"
end

local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.phase == nil or (generation ~= nil and status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition(status, "Stalled")
if status.phase == "Failed" or (stalled ~= nil and stalled.status == "True") then
  hs.status = "Degraded"
  local failed = stalled or condition(status, "Failed")
  hs.message = "Failed: " .. ((failed and failed.message) or "the swarm failed")
  return hs
end

if status.phase == "Succeeded" then
  hs.status = "Healthy"
  local ready = condition(status, "Ready")
  hs.message = "Succeeded: " .. ((ready and ready.message) or "coordinator finished")
  if status.fallback ~= nil then
    hs.message = hs.message .. "; ran on " .. tostring(status.fallback.to) .. " after a fallback: " .. tostring(status.fallback.reason)
  end
  return hs
end

hs.status = "Progressing"
if status.phase == "FallingBack" and status.fallback ~= nil then
  hs.message = "FallingBack to " .. tostring(status.fallback.to) .. ": " .. tostring(status.fallback.reason)
else
  hs.message = status.phase .. progress(status)
end
return hs
