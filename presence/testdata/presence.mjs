// End-to-end presence scenario with the official phoenix.js Presence class.
//
// Run by presence/e2e_test.go as `node presence.mjs <ws-url> [json-options]`
// against a Plume server whose "room:*" channel pushes presence_state after
// join and then tracks its user (helpers_test.go). It prints one JSON object
// per line describing what it checked, and exits 1 with {"ev":"fail"} on the
// first failed check.
import { Socket, Presence } from "phoenix"
import WebSocket from "ws"

const url = process.argv[2]
const opts = process.argv[3] ? JSON.parse(process.argv[3]) : {}
const topic = "room:e2e"
const started = Date.now()

function emit(ev, fields = {}) {
  process.stdout.write(JSON.stringify({ ev, ms: Date.now() - started, ...fields }) + "\n")
}

function check(cond, what, detail) {
  if (!cond) {
    throw new Error(`${what}: ${JSON.stringify(detail)}`)
  }
  emit("ok", { what })
}

function until(cond, label, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs
    const tick = () => {
      const v = cond()
      if (v) {
        resolve(v)
      } else if (Date.now() > deadline) {
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${label}`))
      } else {
        setTimeout(tick, 5)
      }
    }
    tick()
  })
}

const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)))

function reply(push) {
  return new Promise((resolve, reject) => {
    push.receive("ok", resolve)
    push.receive("error", (r) => reject(new Error("error reply " + JSON.stringify(r))))
    push.receive("timeout", () => reject(new Error("push timed out")))
  })
}

// A client is one phoenix Socket (one browser tab) with a Presence.
function client(user, tab, socketOpts = {}) {
  const socket = new Socket(url, {
    transport: WebSocket,
    params: { user, tab },
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 50,
    ...socketOpts,
  })
  socket.connect()
  const channel = socket.channel(topic, { meta: { tab } })
  const presence = new Presence(channel)
  const c = { user, tab, socket, channel, presence, joins: [], leaves: [], syncs: 0, states: 0, maxDiffKeys: 0 }
  presence.onJoin((key, cur, np) => c.joins.push({ key, cur: clone(cur), np: clone(np) }))
  presence.onLeave((key, cur, lp) => c.leaves.push({ key, cur: clone(cur), lp: clone(lp) }))
  presence.onSync(() => {
    c.syncs++
    c.syncedKeys = Object.keys(c.refs()).sort()
  })
  channel.on("presence_state", () => c.states++)
  channel.on("presence_diff", (d) => {
    const keys = new Set([...Object.keys(d.joins), ...Object.keys(d.leaves)]).size
    c.maxDiffKeys = Math.max(c.maxDiffKeys, keys)
  })
  c.joined = reply(channel.join())
  // refs returns {key: [phx_ref, ...]} from the client's Presence.
  c.refs = () => {
    const out = {}
    presence.list((key, p) => {
      out[key] = p.metas.map((m) => m.phx_ref)
    })
    return out
  }
  c.metas = (key) => {
    let metas
    presence.list((k, p) => {
      if (k === key) metas = p.metas
    })
    return metas || []
  }
  c.push = (event, payload) => reply(channel.push(event, payload))
  return c
}

const sameRefs = (a, b) => {
  const norm = (x) => JSON.stringify(Object.keys(x).sort().map((k) => [k, [...x[k]].sort()]))
  return norm(a) === norm(b)
}

// serverRefs asks the server for its list.
async function serverRefs(c) {
  const list = await c.push("list", {})
  const out = {}
  for (const k of Object.keys(list)) out[k] = list[k].metas.map((m) => m.phx_ref)
  return out
}

async function matchesServer(clients, label) {
  const want = await serverRefs(clients[0])
  await until(() => clients.every((c) => sameRefs(c.refs(), want)), `${label}: clients match the server list`)
  emit("ok", { what: label, keys: Object.keys(want).length })
}

async function main() {
  // Two users see each other.
  const alice = client("alice", "a1")
  const bob = client("bob", "b1", { reconnectAfterMs: () => opts.reconnectMs || 300 })
  await Promise.all([alice.joined, bob.joined])
  await until(() => alice.metas("bob").length === 1 && bob.metas("alice").length === 1, "alice and bob to see each other")
  await until(() => alice.metas("alice").length === 1 && bob.metas("bob").length === 1, "both to see themselves")
  check(JSON.stringify(alice.syncedKeys) === '["alice","bob"]' && JSON.stringify(bob.syncedKeys) === '["alice","bob"]',
    "both see each other in onSync", { a: alice.syncedKeys, b: bob.syncedKeys })
  const aliceRef = alice.metas("alice")[0].phx_ref
  const bobRef = bob.metas("bob")[0].phx_ref
  const bobJoin = alice.joins.find((j) => j.key === "bob")
  check(bobJoin && bobJoin.cur === undefined && bobJoin.np.metas.length === 1 && bobJoin.np.metas[0].phx_ref === bobRef,
    "alice's onJoin for bob: no current presence, bob's meta", bobJoin)
  check(alice.metas("bob")[0].tab === "b1", "metas carry the tracked meta", alice.metas("bob"))

  // The same user on a second socket: one key, two metas.
  const alice2 = client("alice", "a2")
  await alice2.joined
  await until(() => bob.metas("alice").length === 2, "bob to see alice's second meta")
  const alice2Ref = bob.metas("alice").find((m) => m.tab === "a2").phx_ref
  const second = bob.joins.filter((j) => j.key === "alice").pop()
  check(second.cur && second.cur.metas.length === 1 && second.cur.metas[0].phx_ref === aliceRef &&
    second.np.metas.length === 1 && second.np.metas[0].phx_ref === alice2Ref,
    "bob's onJoin for alice's second tab: current has the first meta, new has the second", second)

  // Closing that socket leaves one meta.
  alice2.socket.disconnect()
  await until(() => bob.metas("alice").length === 1, "bob to see one alice meta again")
  check(bob.metas("alice")[0].phx_ref === aliceRef, "the first tab's meta remains", bob.metas("alice"))
  const left = bob.leaves.filter((l) => l.key === "alice").pop()
  check(left.lp.metas.length === 1 && left.lp.metas[0].phx_ref === alice2Ref &&
    left.cur.metas.length === 1 && left.cur.metas[0].phx_ref === aliceRef,
    "bob's onLeave for alice: left has the second meta, current the first", left)

  // An update is a change of meta with phx_ref_prev.
  const joinsBefore = alice.joins.length
  const leavesBefore = alice.leaves.length
  const { ref: bobRef2 } = await bob.push("update", { status: "away", tab: "b1" })
  await until(() => alice.metas("bob")[0]?.phx_ref === bobRef2, "alice to see bob's update")
  const m = alice.metas("bob")
  check(m.length === 1 && m[0].status === "away" && m[0].phx_ref_prev === bobRef,
    "bob has one meta, the new one, with phx_ref_prev", m)
  const uj = alice.joins.slice(joinsBefore).filter((j) => j.key === "bob")
  const ul = alice.leaves.slice(leavesBefore).filter((l) => l.key === "bob")
  check(uj.length === 1 && uj[0].np.metas[0].phx_ref === bobRef2 && ul.length === 1 && ul[0].lp.metas[0].phx_ref === bobRef,
    "the update fired onJoin with the new meta and onLeave with the old", { uj, ul })

  // Reconnect: the server drops bob's socket; bob reconnects, rejoins, gets
  // presence_state and is right again, including a change made while he was
  // away.
  const statesBefore = bob.states
  const joinRefBefore = bob.channel.joinRef()
  bob.push("kick", {}).catch(() => {})
  await until(() => alice.metas("bob").length === 0, "alice to see bob leave")
  const { ref: aliceRef2 } = await alice.push("update", { status: "busy", tab: "a1" })
  await until(() => bob.states > statesBefore && bob.channel.joinRef() !== joinRefBefore, "bob to rejoin and get presence_state", 10000)
  await until(() => bob.metas("alice")[0]?.phx_ref === aliceRef2 && bob.metas("bob").length === 1 &&
    bob.metas("bob")[0].phx_ref !== bobRef2, "bob's list to be right after the rejoin")
  check(bob.metas("alice").length === 1 && bob.metas("alice")[0].status === "busy", "bob sees alice's update made while he was away", bob.metas("alice"))
  await until(() => alice.metas("bob").length === 1, "alice to see bob back")
  await matchesServer([alice, bob], "after the reconnect")

  // A burst of joins and leaves of many keys. With coalescing these arrive
  // as diffs with many keys.
  await alice.push("bots", { n: 20, prefix: "bot" })
  await until(() => [alice, bob].every((c) => Object.keys(c.refs()).filter((k) => k.startsWith("bot")).length === 20), "20 bots")
  await matchesServer([alice, bob], "after 20 joins")
  // One push that untracks ten bots and tracks ten others: a diff with
  // leaves and joins of different keys.
  await alice.push("mix", { n: 10, prefix: "bot" })
  await until(() => [alice, bob].every((c) => {
    const bots = Object.keys(c.refs()).filter((k) => k.startsWith("bot"))
    return bots.length === 20 && !bots.includes("bot0") && bots.includes("bot25")
  }), "the mix of leaves and joins")
  await matchesServer([alice, bob], "after the mix")
  await alice.push("unbots", { n: 30, prefix: "bot" })
  await until(() => [alice, bob].every((c) => Object.keys(c.refs()).every((k) => !k.startsWith("bot"))), "all bots gone")
  await matchesServer([alice, bob], "at the end")

  emit("done", { maxDiffKeys: Math.max(alice.maxDiffKeys, bob.maxDiffKeys) })
  for (const c of [alice, bob]) c.socket.disconnect()
}

main().then(
  () => process.exit(0),
  (err) => {
    emit("fail", { error: String(err && err.stack ? err.stack : err) })
    process.exit(1)
  },
)
