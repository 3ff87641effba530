// Scenario 6: the channel process crashes in handle_in. The client gets
// phx_error (onError), rejoins by itself, and pushes work again.
import { run, newSocket, reply, emit, until } from "./lib.mjs"

run(async () => {
  const socket = newSocket({ rejoinAfterMs: () => 50 })
  socket.connect()
  const ch = socket.channel("echo:crash", { v: 1 })
  let joins = 0
  ch.onError((reason) => emit("chan_error", { reason, state: ch.state }))
  ch.onClose(() => emit("chan_close"))
  const jp = ch.join()
  jp.receive("ok", (resp) => { joins++; emit("joined", { n: joins, joinRef: ch.joinRef(), resp }) })
  jp.receive("error", (resp) => emit("join_error", { resp }))
  await until(() => joins === 1, "the first join")

  const crash = reply(ch.push("crash", {}, 400))
  await until(() => joins === 2, "the automatic rejoin")
  emit("reply", { event: "crash", ...(await crash) })
  emit("reply", { event: "echo", ...(await reply(ch.push("echo", { after: "crash" }))), state: ch.state })
  socket.disconnect()
})
