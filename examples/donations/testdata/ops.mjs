// The demo's operations features with the official phoenix client under
// Node (ws transport), against the real binary:
//
//   node ops.mjs <base-url> <user-id> <page-token> <expired-token> <tampered-token> <plume-binary> <broadcast-secret>
//
// The Go test (ops_test.go) renders a campaign page for the user id and its
// token, signs an expired token with the server's secret, tampers with
// one, and builds the plume command.
import { test, after } from "node:test"
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { Client, api, join, sleep } from "./lib.mjs"

const [base, uid, token, expired, tampered, plume, broadcastSecret] = process.argv.slice(2)

after(() => Client.closeAll())

// closed waits until c has recorded a close.
async function closed(c, ms = 3000) {
  const deadline = Date.now() + ms
  while (c.closes.length === 0 && Date.now() < deadline) await sleep(10)
  return c.closes[0]
}

// refused opens a socket with authToken tok and handles its close as the
// campaign page does: a 4xxx code is a refusal, so it disconnects, which
// must stop phoenix.js from reconnecting (it would retry every 50 ms here).
// It returns every close event seen within 500 ms of the first.
async function refused(tok) {
  const c = new Client(base, { authToken: tok })
  const events = []
  c.socket.onClose((e) => {
    events.push({ code: e.code, reason: e.reason })
    if (e.code >= 4000 && e.code < 5000) c.socket.disconnect()
  })
  const deadline = Date.now() + 3000
  while (events.length === 0 && Date.now() < deadline) await sleep(10)
  await sleep(500)
  assert.equal(c.socket.isConnected(), false)
  return events
}

function broadcast(secret, topic, event, payload) {
  return new Promise((resolve) => {
    execFile(plume, ["broadcast", "-url", base + "/api/broadcast", "-topic", topic, "-event", event, "-payload", JSON.stringify(payload)],
      { env: { ...process.env, PLUME_BROADCAST_SECRET: secret }, timeout: 10000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }))
  })
}

test("the page's token as authToken: the socket is its user's (presence key, /api/disconnect)", async () => {
  const c = new Client(base, { authToken: token })
  const ch = c.channel("campaign:ops-token", { user_id: "impostor" })
  assert.deepEqual(await join(ch), {})
  await c.event("campaign:ops-token", "campaign_data")
  const diff = await c.event("campaign:ops-token", "presence_diff", (d) => uid in d.joins)
  assert.deepEqual(Object.keys(diff.joins), [uid])
  // The socket id is user_socket:<the token's user>.
  const r = await api(base, "POST", "/api/disconnect", { user_id: uid })
  assert.equal(r.status, 204)
  assert.equal(await closed(c), 1001)
  // phoenix.js reconnects with the same token and rejoins.
  await c.event("campaign:ops-token", "campaign_data", () => true, 5000)
  await c.disconnect()
})

test("the token as the token param (Phoenix's classic params: {token})", async () => {
  const c = new Client(base, { params: { token } })
  await join(c.channel("campaign:ops-param", {}))
  await c.event("campaign:ops-param", "presence_diff", (d) => uid in d.joins)
  await c.disconnect()
})

test("a tampered token: close 4401 in onClose, and disconnecting there stops the retries", async () => {
  assert.deepEqual(await refused(tampered), [{ code: 4401, reason: "invalid token: unauthorized" }])
})

test("an expired token: close 4401 token expired", async () => {
  assert.deepEqual(await refused(expired), [{ code: 4401, reason: "token expired: unauthorized" }])
})

test("without a token: anonymous, user_id param as the contract says", async () => {
  const c = new Client(base, { params: { user_id: "anon-ops" } })
  await join(c.channel("campaign:ops-anon", { user_id: "anon-ops" }))
  await c.event("campaign:ops-anon", "presence_diff", (d) => "anon-ops" in d.joins)
  const r = await api(base, "POST", "/api/disconnect", { user_id: "anon-ops" })
  assert.equal(r.status, 204)
  assert.equal(await closed(c), 1001)
  const nobody = new Client(base)
  assert.deepEqual(await join(nobody.channel("campaign:ops-anon", {})), {})
  await Promise.all([c.disconnect(), nobody.disconnect()])
})

test("plume broadcast: an HTTP call reaches the clients of a topic", async () => {
  const a = new Client(base, { authToken: token })
  const b = new Client(base)
  await join(a.channel("campaign:ops-bcast", {}))
  await join(b.channel("campaign:ops-bcast", {}))
  const payload = { text: "Matching donations until midnight!" }
  const r = await broadcast(broadcastSecret, "campaign:ops-bcast", "announcement", payload)
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /broadcast announcement to campaign:ops-bcast/)
  assert.deepEqual(await a.event("campaign:ops-bcast", "announcement"), payload)
  assert.deepEqual(await b.event("campaign:ops-bcast", "announcement"), payload)

  // A wrong secret is refused (401), and nothing is sent.
  const bad = await broadcast("not-the-secret", "campaign:ops-bcast", "announcement", { text: "spoofed" })
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /HTTP 401/)
  await a.noEvent("campaign:ops-bcast", "announcement")
  await Promise.all([a.disconnect(), b.disconnect()])
})

test("/metrics: Prometheus text with the endpoint's metrics", async () => {
  const r = await fetch(base + "/metrics")
  assert.equal(r.status, 200)
  assert.match(r.headers.get("content-type"), /^text\/plain/)
  const text = await r.text()
  assert.match(text, /^plume_connect_refusals_total\{reason="connect",transport="websocket"\} 2$/m)
  assert.match(text, /^plume_channel_joins_total\{route="campaign:\*"\} \d+$/m)
  assert.match(text, /^go_goroutines \d+$/m)
})
