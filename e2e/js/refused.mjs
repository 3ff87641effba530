// Scenario 9e: a connect the server refuses. The socket never opens; each
// attempt is an error and phoenix.js keeps retrying. opts: {attempts}.
import { run, newSocket, emit, until, opts } from "./lib.mjs"

run(async () => {
  const socket = newSocket({ params: { refuse: "yes" }, reconnectAfterMs: () => 50 })
  let errors = 0
  socket.onOpen(() => emit("open"))
  socket.onError((e) => { errors++; emit("error", { n: errors, msg: String(e && e.message) }) })
  socket.onClose((e) => emit("close", { code: e.code }))
  const ch = socket.channel("echo:never", {})
  ch.join().receive("ok", () => emit("joined"))
  socket.connect()
  await until(() => errors >= opts.attempts, `${opts.attempts} failed attempts`)
  emit("state", { connected: socket.isConnected(), channel: ch.state })
  socket.disconnect()
})
