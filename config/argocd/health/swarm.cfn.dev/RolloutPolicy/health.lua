-- Argo CD health of a RolloutPolicy (swarm.cfn.dev/v1alpha1): Stalled
-- (rolled back, aborted, breached, a second default) -> Degraded; paused ->
-- Suspended; evaluating a step it will promote from -> Progressing; holding a
-- stable percentage -> Healthy. Lua 5.1 (gopher-lua in Argo CD).
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

local status = obj.status
local generation = obj.metadata.generation
if status == nil or status.phase == nil or (generation ~= nil and status.observedGeneration ~= generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local effective = tostring(status.effectivePercentage or obj.spec.v2Percentage)
local stalled = condition(status, "Stalled")
if status.phase == "RolledBack" or (stalled ~= nil and stalled.status == "True") then
  hs.status = "Degraded"
  hs.message = status.phase .. ": " .. ((stalled and stalled.message) or ("V2 at " .. effective .. "% for new swarms"))
  return hs
end

if status.phase == "Paused" then
  hs.status = "Suspended"
  hs.message = "Paused at " .. effective .. "%"
  return hs
end

local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = status.phase .. ": " .. reconciling.message
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = status.phase .. ": " .. ready.message
  return hs
end

hs.status = "Progressing"
hs.message = status.phase .. ": " .. ((ready and ready.message) or "waiting for the operator")
return hs
