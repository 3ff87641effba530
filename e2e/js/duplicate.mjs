// Scenario 8: two Channel instances for one topic on one socket. phoenix.js
// leaves the open one (leaveOpenTopic) before joining the second; the
// frames it sends are logged so the Go test can see what really happened.
import { run, newSocket, reply, emit, until, sleep } from "./lib.mjs"

run(async () => {
  const socket = newSocket({
    rejoinAfterMs: () => 50,
    logger: (kind, msg, data) => {
      if (kind === "push" || kind === "receive") emit("log", { kind, msg })
    },
  })
  socket.connect()
  const track = (name) => {
    const ch = socket.channel("echo:dup", { name })
    const seen = { closes: 0, errors: 0 }
    ch.onClose(() => { seen.closes++; emit("chan_close", { name }) })
    ch.onError((reason) => {
      if (reason && reason.source === "transport") return
      seen.errors++
      emit("chan_error", { name, reason })
    })
    ch.on("shout", (payload) => emit("recv", { name, event: "shout", payload }))
    return { ch, seen }
  }
  const first = track("first")
  const r1 = await reply(first.ch.join())
  emit("join", { name: "first", ...r1, joinRef: first.ch.joinRef() })

  const second = track("second")
  const r2 = await reply(second.ch.join())
  emit("join", { name: "second", ...r2, joinRef: second.ch.joinRef() })
  await until(() => first.seen.closes === 1, "the first channel to close")

  emit("reply", { name: "second", event: "echo", ...(await reply(second.ch.push("echo", { from: "second" }))) })
  emit("reply", { name: "second", event: "broadcast", ...(await reply(second.ch.push("broadcast", { once: true }))) })
  await sleep(200)
  emit("final", {
    channels: socket.channels.length,
    first: { state: first.ch.state, ...first.seen },
    second: { state: second.ch.state, ...second.seen },
  })
  socket.disconnect()
})
