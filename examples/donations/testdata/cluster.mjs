// Three demo nodes as one cluster, seen by the official phoenix client:
// clients spread over the nodes see each other's donations and presence,
// the API and the dashboard answer with the shared totals on any node, a
// long-poll client behind a round-robin balancer keeps one session, and
// users leave when their node dies (after the presence down period) or
// stops (at once), and come back when it restarts.
//
//   node cluster.mjs '<json: {"urls": [...3 base URLs], "token": ..., "down_ms": ...}>'
//
// The Go test (cluster_test.go) drives the nodes: the script prints
// "@@ <verb> <node>" (kill, restart, term) and waits for "ok <verb> <node>"
// on stdin. It prints "ok - ..." per step and "@@ timing <name> <ms>" for
// the figures the test reports, and exits non-zero on the first failure.
import assert from "node:assert/strict"
import http from "node:http"
import readline from "node:readline"
import { randomBytes } from "node:crypto"
import { Client, Presence, api, join, reply, sleep } from "./lib.mjs"

const { urls, token, down_ms: downMs } = JSON.parse(process.argv[2])
const campaign = "cluster-" + randomBytes(4).toString("hex")
const topic = "campaign:" + campaign

// --- the Go side ---------------------------------------------------------

const inbox = []
let wake = () => {}
readline.createInterface({ input: process.stdin }).on("line", (l) => { inbox.push(l); wake() })

async function ask(cmd) {
  console.log("@@ " + cmd)
  for (;;) {
    const i = inbox.indexOf("ok " + cmd)
    if (i >= 0) return void inbox.splice(i, 1)
    const f = inbox.find((l) => l.startsWith("fail"))
    if (f) throw new Error(`${cmd}: ${f}`)
    await new Promise((r) => { wake = r; setTimeout(r, 200) })
  }
}

const step = (s) => console.log("ok - " + s)
const timing = (name, ms) => console.log(`@@ timing ${name} ${Math.round(ms)}`)

// until polls f every 10 ms until it returns a truthy value, and returns
// the time it took; it fails after ms with label and what describe says.
async function until(f, label, ms, describe = () => "") {
  const t0 = performance.now()
  for (;;) {
    if (f()) return performance.now() - t0
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms: ${label} ${describe()}`)
    await sleep(10)
  }
}

// --- clients -------------------------------------------------------------

// viewer is a user on a campaign page on node (an index in urls, or a
// base URL): its client, channel and the phoenix.js Presence of the
// channel.
async function viewer(node, user, opts = {}) {
  const c = new Client(typeof node === "number" ? urls[node] : node, { params: { user_id: user }, ...opts })
  const ch = c.channel(topic, { user_id: user })
  const presence = new Presence(ch)
  assert.deepEqual(await join(ch), {})
  const data = await c.event(topic, "campaign_data", () => true, 5000)
  return { node, user, c, ch, presence, data }
}

// metas lists a Presence as {user: number of metas}.
function metas(p) {
  const out = {}
  for (const [id, n] of p.list((id, pr) => [id, pr.metas.length]).sort()) out[id] = n
  return out
}
const sameMetas = (v, want) => JSON.stringify(metas(v.presence)) === JSON.stringify(want)
const show = (vs) => () => JSON.stringify(vs.map((v) => [v.user + "@" + v.node, metas(v.presence)]))

async function donate(v, amount, donor) {
  const r = await reply(v.ch.push("new_donation", { amount, donor }))
  assert.equal(r.status, "ok", `${donor} on node ${v.node}: ${JSON.stringify(r)}`)
}

// received waits until each viewer got donation_received from donor.
async function received(vs, donor, amount, extra = {}) {
  for (const v of vs) {
    const p = await v.c.event(topic, "donation_received", (p) => p.donor === donor, 5000)
    assert.equal(p.amount, amount)
    for (const [k, val] of Object.entries(extra)) assert.equal(p[k], val)
  }
}

async function main() {
  // alice, bob and carol on nodes 0, 1 and 2. The nodes have just
  // started: a node's first presences reach a node that has not heard
  // from it yet by a transfer, once heartbeats have introduced them
  // (Phoenix.Tracker's catch-up), which takes about two heartbeats.
  const alice = await viewer(0, "alice")
  const bob = await viewer(1, "bob")
  const carol = await viewer(2, "carol")
  let t0 = performance.now()
  const three = { alice: 1, bob: 1, carol: 1 } // keys sorted, as metas lists them
  await until(() => [alice, bob, carol].every((v) => sameMetas(v, three)), "every viewer lists everyone", 2000, show([alice, bob, carol]))
  timing("presence_cold_start", performance.now() - t0)
  step("presence: viewers on three freshly started nodes list each other within 2 s")

  // Then dave opens two tabs, on nodes 0 and 2 (one key, two metas):
  // every node lists them within 2 s.
  t0 = performance.now()
  const dave0 = await viewer(0, "dave")
  const dave2 = await viewer(2, "dave")
  const all = [alice, bob, carol, dave0, dave2]
  const full = { alice: 1, bob: 1, carol: 1, dave: 2 }
  await until(() => all.every((v) => sameMetas(v, full)), "every viewer lists dave's two tabs", 2000, show(all))
  timing("presence_join", performance.now() - t0)
  step("presence: a user's tabs on nodes 0 and 2 are listed on every node within 2 s")

  const admin = new Client(urls[1])
  const dash = admin.channel("dashboard:live", { admin_token: token })
  assert.deepEqual(await join(dash), {})
  await admin.event("dashboard:live", "dashboard_state")

  // A donation on node 0 reaches every node, and the dashboard.
  await donate(alice, 1000, "Alice")
  await received(all, "Alice", 1000)
  const nd = await admin.event("dashboard:live", "new_donation", (p) => p.donor === "Alice", 5000)
  assert.equal(nd.campaign_id, campaign)
  step("donations: one made on node 0 reaches viewers on all nodes and the dashboard on node 1")

  // The same new donor on three nodes at once is one donor.
  await Promise.all([donate(alice, 100, "Zed"), donate(bob, 200, "Zed"), donate(carol, 300, "Zed")])
  for (const v of all) {
    const got = []
    for (let i = 0; i < 3; i++) got.push((await v.c.event(topic, "donation_received", (p) => p.donor === "Zed", 5000)).amount)
    assert.deepEqual(got.sort(), [100, 200, 300])
  }
  step("donations: concurrent donations on three nodes all reach everyone")

  // The HTTP API on node 2, then every node's view of the totals.
  const bt = await api(urls[2], "POST", "/api/bank_transfers", { campaign_id: campaign, amount: 5000, donor: "Bank" })
  assert.equal(bt.status, 201, bt.text)
  let want = { donors: 3, goal: 100000000, id: campaign, raised: 6600 }
  assert.deepEqual(bt.json, want)
  await received(all, "Bank", 5000, { source: "bank_transfer" })
  for (const u of urls) assert.deepEqual((await api(u, "GET", "/api/campaigns/" + campaign)).json, want, u)
  const upd = await reply(dash.push("request_campaign_update", { campaign_id: campaign }))
  assert.deepEqual(upd, { status: "ok", response: want })
  step("API: a bank transfer on node 2 reaches all; GET /api/campaigns and request_campaign_update agree on every node")

  // campaign_updated from node 2 reaches node 0 and 1.
  assert.equal((await reply(carol.ch.push("update_campaign", { raised: 42 }))).status, "ok")
  for (const v of [alice, bob, dave0]) assert.equal((await v.c.event(topic, "campaign_updated", () => true, 5000)).raised, 42)
  step("broadcasts: update_campaign on node 2 reaches the other nodes")

  // Long-poll behind a round-robin balancer: each request goes to the next
  // node, and the nodes forward it to the one holding the session.
  const lb = await roundRobin()
  const lbErin = await viewer(lb.url, "erin", { longpoll: true })
  await until(() => metas(alice.presence).erin === 1 && metas(carol.presence).erin === 1, "erin (long-poll) on nodes 0 and 2", 3000, show(all))
  await donate(lbErin, 77, "Erin")
  await received([alice, bob, carol], "Erin", 77)
  await donate(bob, 55, "Bob")
  await received([lbErin], "Bob", 55)
  assert.ok(lb.hits.every((n) => n > 0), `requests per node: ${lb.hits}`)
  // Leaving untracks at once (a long-poll client that just goes away
  // leaves when its session times out on the server). phoenix.js
  // resolves leave() at once, before the phx_leave is sent: disconnect
  // once it has taken effect.
  lbErin.ch.leave()
  await until(() => all.every((v) => metas(v.presence).erin === undefined), "erin leaves", 3000, show(all))
  await lbErin.c.disconnect()
  lb.close()
  step(`long-poll: one session across three nodes behind a round-robin balancer (requests per node ${lb.hits})`)
  want = { ...want, donors: 5, raised: 6600 + 77 + 55 }

  // kill -9 node 2: carol and dave's tab there leave the others once the
  // node is found down.
  t0 = performance.now()
  await ask("kill 2")
  const survivors = [alice, bob, dave0]
  const afterKill = { alice: 1, bob: 1, dave: 1 }
  await until(() => survivors.every((v) => sameMetas(v, afterKill)), "node 2's users leave", downMs + 3000, show(survivors))
  const killLeave = performance.now() - t0
  timing("kill_leave", killLeave)
  assert.ok(killLeave >= downMs / 3, `left ${killLeave} ms after the kill: sooner than a down period allows`)
  step(`kill -9 node 2: its users left the other nodes after ${Math.round(killLeave)} ms (down period ${downMs} ms)`)

  // Restart it: carol and dave's tab reconnect and rejoin, and everyone
  // lists everyone again; carol gets the shared totals.
  t0 = performance.now()
  carol.c.msgs.length = 0
  await ask("restart 2")
  await until(() => all.every((v) => sameMetas(v, full)), "node 2's users are back everywhere", 10000, show(all))
  timing("restart_rejoin", performance.now() - t0)
  const data = await carol.c.event(topic, "campaign_data", () => true, 5000)
  assert.deepEqual(data, want)
  await donate(carol, 11, "Carol")
  await received([alice, bob, dave0], "Carol", 11)
  want = { ...want, donors: 6, raised: want.raised + 11 }
  step("restart node 2: its users are back on every node, with the shared totals")

  // SIGTERM node 1: bob leaves at once (PermdownOnClose), well within the
  // down period.
  const left = until(() => [alice, carol, dave0, dave2].every((v) => metas(v.presence).bob === undefined),
    "bob leaves", downMs, show([alice, carol]))
  await ask("term 1")
  const termLeave = await left
  timing("term_leave", termLeave)
  assert.ok(termLeave < downMs / 2, `bob left ${termLeave} ms after SIGTERM: not before half the down period`)
  await bob.c.disconnect()
  await admin.disconnect()
  for (const u of [urls[0], urls[2]]) assert.deepEqual((await api(u, "GET", "/api/campaigns/" + campaign)).json, want, u)
  step(`SIGTERM node 1: its users left the other nodes after ${Math.round(termLeave)} ms`)

  await Client.closeAll()
}

// roundRobin is an HTTP balancer on 127.0.0.1 that sends each request to
// the next node in turn, as a load balancer without sticky sessions does.
function roundRobin() {
  const hits = urls.map(() => 0)
  let next = 0
  const srv = http.createServer((req, res) => {
    const i = next++ % urls.length
    hits[i]++
    const u = new URL(urls[i])
    const up = http.request({ host: u.hostname, port: u.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers)
      r.pipe(res)
    })
    up.on("error", () => { res.writeHead(502); res.end() })
    req.pipe(up)
  })
  return new Promise((resolve) => srv.listen(0, "127.0.0.1", () => {
    resolve({ url: `http://127.0.0.1:${srv.address().port}`, hits, close: () => { srv.closeAllConnections(); srv.close() } })
  }))
}

try {
  await main()
  process.exit(0)
} catch (e) {
  console.log("not ok - " + (e.stack || e))
  process.exit(1)
}
