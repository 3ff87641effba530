// Scenario 1: join replies. A join's ok response, a join refused with a
// payload (RefuseJoin), a join refused with a plain error, an unmatched
// topic, and join params reaching the server.
import { run, newSocket, reply, emit } from "./lib.mjs"

run(async () => {
  // A long rejoin interval: refused channels would otherwise retry.
  const socket = newSocket({ rejoinAfterMs: () => 60000 })
  socket.connect()

  const joins = [
    ["echo:join", { user: "u1", n: 2, list: [1, "two"], deep: { ok: true } }],
    ["private:vault", { token: "wrong" }],
    ["nope:1", {}],
    ["unknown:1", {}],
  ]
  const channels = []
  for (const [topic, params] of joins) {
    const ch = socket.channel(topic, params)
    channels.push(ch)
    const r = await reply(ch.join())
    emit("join", { topic, ...r, state: ch.state, joinRef: ch.joinRef() })
  }
  // The refused channel leaves; a second instance with the right token joins.
  channels[1].leave()
  const vault = socket.channel("private:vault", { token: "letmein" })
  const r = await reply(vault.join())
  emit("join", { topic: "private:vault", second: true, ...r, state: vault.state, joinRef: vault.joinRef() })
  socket.disconnect()
})
