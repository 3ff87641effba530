// Scenario 4: binary. Push an ArrayBuffer and get bytes back; receive a
// binary push (kind 0) and a binary broadcast (kind 2) as ArrayBuffers.
import { run, newSocket, reply, emit, until, describe } from "./lib.mjs"

run(async () => {
  const socket = newSocket()
  socket.connect()
  const ch = socket.channel("echo:bin", {})
  const got = []
  for (const event of ["bin_push", "bin_bc"]) {
    ch.on(event, (payload, ref) => {
      got.push(event)
      emit("recv", { event, payload: describe(payload), ref: ref ?? null })
    })
  }
  const j = await reply(ch.join())
  if (j.status !== "ok") throw new Error("join failed: " + JSON.stringify(j))

  const out = new Uint8Array([1, 2, 3, 0, 128, 255, 10])
  emit("reply", { event: "binary", ...(await reply(ch.push("binary", out.buffer))) })
  // Empty binary payload.
  emit("reply", { event: "binary_empty", ...(await reply(ch.push("binary", new ArrayBuffer(0)))) })
  emit("reply", { event: "push_binary", ...(await reply(ch.push("push_binary", {}))) })
  await until(() => got.includes("bin_push"), "bin_push")
  emit("reply", { event: "broadcast_binary", ...(await reply(ch.push("broadcast_binary", {}))) })
  await until(() => got.includes("bin_bc"), "bin_bc")
  socket.disconnect()
})
