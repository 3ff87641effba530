// Scenario 5a: heartbeats keep an otherwise silent connection open past the
// server's idle timeout. opts: {heartbeatMs, watchMs}.
//
// The script also measures how late its own timers run ("lag"): a client
// starved of CPU sends its heartbeats late, and that says nothing about the
// server.
import { run, newSocket, emit, sleep, until, opts } from "./lib.mjs"

run(async () => {
  const tick = 10
  let maxLag = 0
  let last = Date.now()
  const monitor = setInterval(() => {
    const now = Date.now()
    maxLag = Math.max(maxLag, now - last - tick)
    last = now
  }, tick)

  const socket = newSocket({
    heartbeatIntervalMs: opts.heartbeatMs,
    logger: (kind, msg) => {
      if (kind === "push" && msg.startsWith("phoenix heartbeat")) emit("hb_sent")
      if (/heartbeat timeout/.test(msg)) emit("log", { kind, msg })
    },
  })
  let closed = false
  socket.onOpen(() => emit("open"))
  socket.onClose((e) => { closed = true; emit("close", { code: e.code, reason: String(e.reason) }) })
  socket.onError((e) => emit("error", { msg: String(e && e.message) }))
  socket.onMessage((msg) => {
    if (msg.topic === "phoenix" && msg.event === "phx_reply") {
      emit("heartbeat_reply", { ref: msg.ref, status: msg.payload.status, response: msg.payload.response, join_ref: msg.join_ref })
    }
  })
  socket.connect()
  await sleep(opts.watchMs)
  const connected = socket.isConnected()
  clearInterval(monitor)
  emit("lag", { maxMs: maxLag })
  emit("state", { connected })
  // A closing socket: let its close event show.
  if (!connected) await until(() => closed, "the close event", 2000).catch(() => {})
  socket.disconnect()
})
