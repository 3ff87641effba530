// Scenario 2: push replies. ok with the echoed payload, error, a custom
// status, and a push the server never answers timing out.
import { run, newSocket, reply, emit } from "./lib.mjs"

run(async () => {
  const socket = newSocket()
  socket.connect()
  const ch = socket.channel("echo:push", {})
  const j = await reply(ch.join())
  if (j.status !== "ok") throw new Error("join failed: " + JSON.stringify(j))

  const payload = { a: 1, s: "x", nested: { list: [true, null, 2.5] }, u: "héllo ✓" }
  emit("reply", { event: "echo", ...(await reply(ch.push("echo", payload))) })
  emit("reply", { event: "fail", ...(await reply(ch.push("fail", {}))) })
  emit("reply", { event: "custom", ...(await reply(ch.push("custom", {}), ["accepted"])) })
  const t0 = Date.now()
  emit("reply", { event: "silent", ...(await reply(ch.push("silent", { n: 1 }, 200))), elapsed: Date.now() - t0 })
  // The channel still works after the timeout.
  emit("reply", { event: "echo2", ...(await reply(ch.push("echo", { after: "timeout" }))) })
  socket.disconnect()
})
