// Scenario 7: leaving, and channels the server stops. channel.leave() gets
// ok and onClose; a graceful server stop (ErrNormal) closes the channel for
// good (phx_close); a stop with an error is a crash (phx_error), so the
// client rejoins.
import { run, newSocket, reply, emit, until, sleep } from "./lib.mjs"

run(async () => {
  const socket = newSocket({ rejoinAfterMs: () => 50 })
  socket.connect()
  const watch = (topic) => {
    const ch = socket.channel(topic, {})
    const seen = { joins: 0, closes: 0, errors: 0 }
    ch.onClose((payload) => { seen.closes++; emit("chan_close", { topic, payload, state: ch.state }) })
    ch.onError((reason) => {
      if (reason && reason.source === "transport") return
      seen.errors++
      emit("chan_error", { topic, reason })
    })
    ch.join().receive("ok", () => { seen.joins++; emit("joined", { topic, n: seen.joins, joinRef: ch.joinRef() }) })
    return { ch, seen }
  }

  const leave = watch("echo:leave")
  await until(() => leave.seen.joins === 1, "join echo:leave")
  emit("reply", { topic: "echo:leave", event: "phx_leave", ...(await reply(leave.ch.leave())) })
  await until(() => leave.seen.closes === 1, "onClose after leave")

  const stop = watch("echo:stop")
  await until(() => stop.seen.joins === 1, "join echo:stop")
  emit("reply", { topic: "echo:stop", event: "stop", ...(await reply(stop.ch.push("stop", {}))) })
  await until(() => stop.seen.closes === 1, "onClose after a server stop")

  const failStop = watch("echo:failstop")
  await until(() => failStop.seen.joins === 1, "join echo:failstop")
  emit("reply", { topic: "echo:failstop", event: "fail_stop", ...(await reply(failStop.ch.push("fail_stop", {}))) })
  await until(() => failStop.seen.joins === 2, "rejoin after a stop with an error")

  // Give a wrongly scheduled rejoin of the closed channels time to show.
  await sleep(200)
  emit("final", {
    channels: socket.channels.map((c) => c.topic),
    states: { leave: leave.ch.state, stop: stop.ch.state, failstop: failStop.ch.state },
    seen: { leave: leave.seen, stop: stop.seen, failstop: failStop.seen },
  })
  socket.disconnect()
})
