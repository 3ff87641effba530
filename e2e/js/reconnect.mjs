// Scenarios 9a to 9c: the server closes the connection (forced disconnect,
// drain or a normal close). The client reconnects and rejoins by itself.
// opts: {userId, closeByPush}: with closeByPush the script itself asks the
// server to close the connection (Conn.Close, code 1000).
import { run, newSocket, reply, emit, until, opts } from "./lib.mjs"

run(async () => {
  const socket = newSocket({
    params: { user_id: opts.userId },
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 50,
  })
  let opens = 0
  let joins = 0
  socket.onOpen(() => { opens++; emit("open", { n: opens }) })
  socket.onClose((e) => emit("close", { code: e.code, reason: String(e.reason), wasClean: e.wasClean }))
  socket.onError((e) => emit("error", { msg: String(e && e.message) }))
  socket.connect()
  const ch = socket.channel("echo:re", { v: 2 })
  ch.onError((reason) => emit("chan_error", { reason }))
  ch.onClose(() => emit("chan_close"))
  ch.join().receive("ok", () => { joins++; emit("joined", { n: joins, joinRef: ch.joinRef() }) })
  await until(() => joins === 1, "the first join")
  emit("ready")
  if (opts.closeByPush) ch.push("close_conn", {})
  await until(() => opens === 2 && joins === 2, "reconnect and rejoin", 10000)
  emit("reply", { event: "echo", ...(await reply(ch.push("echo", { after: "reconnect" }))) })
  socket.disconnect()
})
