// Scenario 3: broadcasts. Three sockets join one topic. The Go test
// broadcasts from the endpoint; socket A broadcasts (all three get it) and
// broadcasts from itself (only B and C get it), then broadcasts a marker so
// that A's stream is known complete.
import { run, newSocket, reply, emit, until, command } from "./lib.mjs"

run(async () => {
  const names = ["A", "B", "C"]
  const got = { A: [], B: [], C: [] }
  const socks = {}
  const chans = {}
  for (const name of names) {
    const socket = newSocket()
    socket.connect()
    const ch = socket.channel("echo:room", { name })
    for (const event of ["shout", "shout_from", "from_go", "marker"]) {
      ch.on(event, (payload, ref) => {
        got[name].push(event)
        emit("recv", { sock: name, event, payload, ref: ref ?? null })
      })
    }
    const r = await reply(ch.join())
    if (r.status !== "ok") throw new Error(`join ${name}: ${JSON.stringify(r)}`)
    socks[name] = socket
    chans[name] = ch
  }
  const has = (event, who) => who.every((n) => got[n].includes(event))

  emit("ready")
  await command("broadcasted")
  await until(() => has("from_go", names), "from_go on A, B and C")

  emit("reply", { event: "broadcast", ...(await reply(chans.A.push("broadcast", { text: "hi all" }))) })
  await until(() => has("shout", names), "shout on A, B and C")

  emit("reply", { event: "broadcast_from", ...(await reply(chans.A.push("broadcast_from", { text: "not me" }))) })
  await until(() => has("shout_from", ["B", "C"]), "shout_from on B and C")

  // The marker is broadcast after shout_from by the same channel, so once A
  // has it, A would have had shout_from too.
  await reply(chans.A.push("broadcast", { text: "marker" }))
  await until(() => names.every((n) => got[n].filter((e) => e === "shout").length === 2), "the marker on A, B and C")
  for (const name of names) socks[name].disconnect()
})
