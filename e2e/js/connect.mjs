// Scenarios 9d and 10: connecting with params and an authToken.
// opts: {params, authToken} are passed to the Socket as they are.
import { run, newSocket, reply, emit, until, opts } from "./lib.mjs"

run(async () => {
  const socket = newSocket({ ...opts, reconnectAfterMs: () => 60000 })
  let opened = false
  socket.onOpen(() => {
    opened = true
    emit("open", { protocol: socket.conn.protocol, url: socket.endPointURL() })
  })
  socket.onError((e) => emit("error", { msg: String(e && e.message) }))
  socket.connect()
  await until(() => opened, "the socket to open")
  const ch = socket.channel("echo:hello", {})
  emit("join", await reply(ch.join()))
  socket.disconnect()
})
