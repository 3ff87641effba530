// Presence across two Plume nodes, with the official phoenix.js Presence.
//
// Run by presence/e2e_test.go as `node cluster.mjs <ws-url-1> <ws-url-2>`:
// alice connects to node 1 and bob to node 2, whose trackers replicate over
// a shared PubSub. Prints JSON lines; exits 1 with {"ev":"fail"} on the
// first failed check.
import { Socket, Presence } from "phoenix"
import WebSocket from "ws"

const [url1, url2] = process.argv.slice(2)
const topic = "room:cluster"
const started = Date.now()

function emit(ev, fields = {}) {
  process.stdout.write(JSON.stringify({ ev, ms: Date.now() - started, ...fields }) + "\n")
}

function check(cond, what, detail) {
  if (!cond) throw new Error(`${what}: ${JSON.stringify(detail)}`)
  emit("ok", { what })
}

function until(cond, label, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs
    const tick = () => {
      if (cond()) resolve()
      else if (Date.now() > deadline) reject(new Error(`timed out after ${timeoutMs} ms waiting for ${label}`))
      else setTimeout(tick, 5)
    }
    tick()
  })
}

function reply(push) {
  return new Promise((resolve, reject) => {
    push.receive("ok", resolve)
    push.receive("error", (r) => reject(new Error("error reply " + JSON.stringify(r))))
    push.receive("timeout", () => reject(new Error("push timed out")))
  })
}

function client(url, user) {
  const socket = new Socket(url, { transport: WebSocket, params: { user, tab: "1" } })
  socket.connect()
  const channel = socket.channel(topic, { meta: { node: url === url1 ? 1 : 2 } })
  const presence = new Presence(channel)
  const c = { socket, channel, presence, joins: [], leaves: [] }
  presence.onJoin((key, cur, np) => c.joins.push({ key, np: JSON.parse(JSON.stringify(np)) }))
  presence.onLeave((key, cur, lp) => c.leaves.push({ key, lp: JSON.parse(JSON.stringify(lp)) }))
  c.joined = reply(channel.join())
  c.metas = (key) => {
    let metas = []
    presence.list((k, p) => {
      if (k === key) metas = p.metas
    })
    return metas
  }
  c.refs = () => {
    const out = {}
    presence.list((k, p) => {
      out[k] = p.metas.map((m) => m.phx_ref).sort()
    })
    return out
  }
  c.push = (event, payload) => reply(channel.push(event, payload))
  return c
}

async function serverRefs(c) {
  const list = await c.push("list", {})
  const out = {}
  for (const k of Object.keys(list)) out[k] = list[k].metas.map((m) => m.phx_ref).sort()
  return out
}

const same = (a, b) => JSON.stringify(a, Object.keys(a).sort()) === JSON.stringify(b, Object.keys(b).sort())

async function main() {
  const alice = client(url1, "alice")
  const bob = client(url2, "bob")
  await Promise.all([alice.joined, bob.joined])
  await until(() => alice.metas("bob").length === 1 && bob.metas("alice").length === 1, "alice and bob to see each other across nodes")
  check(alice.metas("bob")[0].node === 2 && bob.metas("alice")[0].node === 1, "metas come from the other node", {
    a: alice.metas("bob"),
    b: bob.metas("alice"),
  })

  const oldRef = alice.metas("bob")[0].phx_ref
  const { ref } = await bob.push("update", { node: 2, status: "away" })
  await until(() => alice.metas("bob")[0]?.phx_ref === ref, "alice to see bob's update")
  const m = alice.metas("bob")
  check(m.length === 1 && m[0].phx_ref_prev === oldRef && m[0].status === "away", "the update crossed nodes with phx_ref_prev", m)

  for (const c of [alice, bob]) {
    const want = await serverRefs(c)
    await until(() => same(c.refs(), want), "client to match its node's list")
  }
  emit("ok", { what: "clients match their node's list" })

  bob.socket.disconnect()
  await until(() => alice.metas("bob").length === 0, "alice to see bob leave")
  const left = alice.leaves.filter((l) => l.key === "bob").pop()
  check(left && left.lp.metas[0].phx_ref === ref, "alice's onLeave has bob's last meta", left)
  emit("done")
  alice.socket.disconnect()
}

main().then(
  () => process.exit(0),
  (err) => {
    emit("fail", { error: String(err && err.stack ? err.stack : err) })
    process.exit(1)
  },
)
