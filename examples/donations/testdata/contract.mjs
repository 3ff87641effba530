// The demo contract (shared/contract/donations.md), rule by rule, with the
// official phoenix client against the real binary.
//
//   node contract.mjs <base-url> <admin-token> <state-file> before|after
//
// "before" runs on a fresh database and saves what it expects to survive a
// restart in state-file; "after" runs once the server has been restarted on
// the same database and checks it did.
import { test, after } from "node:test"
import assert from "node:assert/strict"
import { readFileSync, writeFileSync } from "node:fs"
import { Client, Presence, WebSocket, api, isoUTC, join, refusedJoin, reply, sleep } from "./lib.mjs"

const [base, token, stateFile, phase] = process.argv.slice(2)
const wsBase = base.replace(/^http/, "ws")
const fresh = (id) => ({ donors: 0, goal: 100000000, id, raised: 0 })
const keys = (o) => Object.keys(o).sort().join(",")

after(() => Client.closeAll())

// campaign joins campaign:<id> and returns the client, the channel and the
// campaign_data it got.
async function campaign(id, userID) {
  const c = new Client(base, { params: userID === undefined ? {} : { user_id: userID } })
  const ch = c.channel("campaign:" + id, userID === undefined ? {} : { user_id: userID })
  assert.deepEqual(await join(ch), {})
  const data = await c.event("campaign:" + id, "campaign_data")
  return { c, ch, data }
}

async function admin() {
  const c = new Client(base)
  const ch = c.channel("dashboard:live", { admin_token: token })
  assert.deepEqual(await join(ch), {})
  const state = await c.event("dashboard:live", "dashboard_state")
  return { c, ch, state }
}

if (phase === "before") {
  // Shared across the tests below, which run in order.
  let x1, x2, dash

  test("heartbeat: topic phoenix, reply ok {}", async () => {
    const c = new Client(base, { heartbeatIntervalMs: 100 })
    const m = await c.take((m) => m.topic === "phoenix" && m.event === "phx_reply", "heartbeat reply")
    assert.deepEqual(m.payload, { status: "ok", response: {} })
    await c.disconnect()
  })

  test("vsn: 2.0.0 and 1.0.0 as Phoenix matches them; no vsn is 1.0.0; others 403", async () => {
    const status = (vsn) => new Promise((resolve) => {
      const ws = new WebSocket(`${wsBase}/socket/websocket` + (vsn === null ? "" : `?vsn=${vsn}`))
      ws.on("open", () => { ws.close(1000); resolve(101) })
      ws.on("unexpected-response", (req, res) => { resolve(res.statusCode); req.destroy() })
      ws.on("error", () => {})
    })
    for (const vsn of ["2.0.0", "1.0.0", "2.0.9", null]) assert.equal(await status(vsn), 101, `vsn ${vsn}`)
    for (const vsn of ["2.1.0", "1.1.0", "3.0.0", "garbage", ""]) assert.equal(await status(vsn), 403, `vsn ${vsn}`)
    // Without vsn the server speaks V1 (JSON objects).
    const v1 = await new Promise((resolve, reject) => {
      const ws = new WebSocket(`${wsBase}/socket/websocket`)
      ws.on("open", () => ws.send(JSON.stringify({ topic: "phoenix", event: "heartbeat", payload: {}, ref: "1" })))
      ws.on("message", (d) => { resolve(JSON.parse(d.toString())); ws.close(1000) })
      ws.on("error", reject)
    })
    assert.deepEqual(v1, { event: "phx_reply", payload: { response: {}, status: "ok" }, ref: "1", topic: "phoenix" })
    // Long-poll answers 200 with the status in the body.
    const lp = await api(base, "GET", "/socket/longpoll?vsn=2.1.0")
    assert.equal(lp.status, 200)
    assert.equal(lp.json.status, 403)
  })

  test("any other topic: join error unmatched topic", async () => {
    const c = new Client(base)
    for (const topic of ["nope:1", "dashboard:other", "campaigns:x"]) {
      assert.deepEqual(await refusedJoin(c.channel(topic, {})), { reason: "unmatched topic" })
    }
  })

  test("campaign join: data, presence_state, presence_diff in that order", async () => {
    const c = new Client(base, { params: { user_id: "u1" } })
    const seq = []
    c.socket.onMessage((m) => { if (m.topic === "campaign:x") seq.push(m.event) })
    const ch = c.channel("campaign:x", { user_id: "u1" })
    const presence = new Presence(ch)
    assert.deepEqual(await join(ch), {})
    const data = await c.event("campaign:x", "campaign_data")
    assert.deepEqual(data, fresh("x"))
    const state = await c.event("campaign:x", "presence_state")
    assert.deepEqual(state, {})
    const diff = await c.event("campaign:x", "presence_diff")
    assert.deepEqual(Object.keys(diff.joins), ["u1"])
    assert.deepEqual(diff.leaves, {})
    const [meta] = diff.joins.u1.metas
    assert.equal(keys(meta), "online_at,phx_ref")
    assert.match(meta.online_at, /^\d{10}$/)
    assert.ok(Math.abs(Number(meta.online_at) - Date.now() / 1000) < 60)
    assert.deepEqual(seq, ["phx_reply", "campaign_data", "presence_state", "presence_diff"])
    x1 = { c, ch, presence }
  })

  test("campaign join without user_id: campaign_data only, nobody tracked", async () => {
    const { c, data } = await campaign("y")
    assert.deepEqual(data, fresh("y"))
    await c.noEvent("campaign:y", "presence_state")
    await c.noEvent("campaign:y", "presence_diff")
  })

  test("presence: a second viewer gets the first in presence_state; Presence.onSync lists both", async () => {
    const c = new Client(base, { params: { user_id: "u2" } })
    const ch = c.channel("campaign:x", { user_id: "u2" })
    const presence = new Presence(ch)
    let synced = []
    presence.onSync(() => { synced = presence.list((id) => id).sort() })
    await join(ch)
    await c.event("campaign:x", "campaign_data")
    const state = await c.event("campaign:x", "presence_state")
    assert.deepEqual(Object.keys(state), ["u1"])
    await x1.c.event("campaign:x", "presence_diff", (d) => "u2" in d.joins)
    await c.event("campaign:x", "presence_diff", (d) => "u2" in d.joins)
    assert.deepEqual(synced, ["u1", "u2"])
    assert.deepEqual(x1.presence.list((id) => id).sort(), ["u1", "u2"])
    x2 = { c, ch, presence }
  })

  test("dashboard: unauthorized without the token", async () => {
    const c = new Client(base)
    for (const payload of [{ admin_token: "bad" }, {}, { admin_token: token + "x" }, { admin_token: 1 }]) {
      assert.deepEqual(await refusedJoin(c.channel("dashboard:live", payload)), { reason: "unauthorized" })
    }
  })

  test("dashboard: ok {}, dashboard_state, presence_state, then admin tracked", async () => {
    const c = new Client(base)
    const seq = []
    c.socket.onMessage((m) => { if (m.topic === "dashboard:live") seq.push(m.event) })
    const ch = c.channel("dashboard:live", { admin_token: token })
    const presence = new Presence(ch)
    assert.deepEqual(await join(ch), {})
    const state = await c.event("dashboard:live", "dashboard_state")
    assert.deepEqual(state, { active_campaigns: 2, recent_donations: [], total_raised: 0 })
    assert.deepEqual(await c.event("dashboard:live", "presence_state"), {})
    const diff = await c.event("dashboard:live", "presence_diff")
    const [meta] = diff.joins.admin.metas
    assert.equal(keys(meta), "joined_at,phx_ref,role")
    assert.equal(meta.role, "admin")
    assert.match(meta.joined_at, isoUTC)
    assert.deepEqual(presence.list((id) => id), ["admin"])
    assert.deepEqual(seq, ["phx_reply", "dashboard_state", "presence_state", "presence_diff"])
    dash = { c, ch }
  })

  test("new_donation: donation_received to every member, new_donation on the dashboard, then reply ok {}", async () => {
    const seq = []
    // (campaign_refreshed comes every -refresh and may fall in between.)
    const spy = x1.c.socket.onMessage((m) => { if (m.topic === "campaign:x" && m.event !== "campaign_refreshed") seq.push(m.event) })
    const push = x1.ch.push("new_donation", { amount: 100, donor: "Ann" })
    const replied = reply(push)
    const got = await x1.c.event("campaign:x", "donation_received")
    assert.equal(keys(got), "amount,donor,timestamp")
    assert.equal(got.amount, 100)
    assert.equal(got.donor, "Ann")
    assert.match(got.timestamp, isoUTC)
    assert.deepEqual(await replied, { status: "ok", response: {} })
    // The broadcast reaches the sender before its reply.
    x1.c.socket.off([spy])
    assert.deepEqual(seq, ["donation_received", "phx_reply"])
    assert.deepEqual(await x2.c.event("campaign:x", "donation_received"), got)
    const d = await dash.c.event("dashboard:live", "new_donation")
    assert.deepEqual(d, { amount: 100, campaign_id: "x", donor: "Ann", timestamp: got.timestamp })
    // Viewers of another campaign get nothing.
    const y = await campaign("y")
    await y.c.noEvent("campaign:y", "donation_received")
  })

  test("new_donation: donors are distinct names; totals in campaign_data for the next viewer", async () => {
    assert.equal((await reply(x2.ch.push("new_donation", { amount: 250, donor: "Bob" }))).status, "ok")
    assert.equal((await reply(x1.ch.push("new_donation", { amount: 50, donor: "Ann" }))).status, "ok")
    const { data } = await campaign("x")
    assert.deepEqual(data, { donors: 2, goal: 100000000, id: "x", raised: 400 })
    for (const c of [x1.c, x2.c]) {
      await c.event("campaign:x", "donation_received", (d) => d.donor === "Bob")
      await c.event("campaign:x", "donation_received", (d) => d.donor === "Ann" && d.amount === 50)
    }
    await dash.c.event("dashboard:live", "new_donation", (d) => d.donor === "Bob")
    await dash.c.event("dashboard:live", "new_donation", (d) => d.donor === "Ann" && d.amount === 50)
  })

  test("new_donation: every invalid case is error invalid_donation and nothing is broadcast", async () => {
    const cases = [
      { amount: -1, donor: "Ann" },
      { amount: 5, donor: "" },
      { amount: 1.5, donor: "Ann" },
      "not a map",
      { amount: 0, donor: "Ann" },
      { amount: "5", donor: "Ann" },
      { donor: "Ann" },
      { amount: 5 },
      { amount: 5, donor: 5 },
      { amount: 5, donor: "x".repeat(101) },
      { amount: 5, donor: "🎉".repeat(101) },
      { amount: null, donor: "Ann" },
      null,
      [100, "Ann"],
      42,
      new Uint8Array([1, 2, 3]).buffer,
    ]
    for (const payload of cases) {
      const r = await reply(x1.ch.push("new_donation", payload))
      assert.deepEqual(r, { status: "error", response: { reason: "invalid_donation" } }, JSON.stringify(payload))
    }
    await x2.c.noEvent("campaign:x", "donation_received")
    await dash.c.noEvent("dashboard:live", "new_donation", 0)
    // 100 code points is fine, however many bytes.
    assert.equal((await reply(x1.ch.push("new_donation", { amount: 1, donor: "🎉".repeat(100) }))).status, "ok")
    await x2.c.event("campaign:x", "donation_received", (d) => d.donor === "🎉".repeat(100))
    await x1.c.event("campaign:x", "donation_received", (d) => d.donor === "🎉".repeat(100))
    await dash.c.event("dashboard:live", "new_donation", (d) => d.donor === "🎉".repeat(100))
  })

  test("update_campaign: campaign_updated broadcast, reply ok {}; totals unchanged; invalid_update", async () => {
    const r = await reply(x1.ch.push("update_campaign", { raised: 42 }))
    assert.deepEqual(r, { status: "ok", response: {} })
    for (const c of [x1.c, x2.c]) {
      const u = await c.event("campaign:x", "campaign_updated")
      assert.equal(keys(u), "campaign_id,raised,timestamp")
      assert.equal(u.campaign_id, "x")
      assert.equal(u.raised, 42)
      assert.match(u.timestamp, isoUTC)
    }
    for (const payload of [{ raised: -3 }, { raised: 1.5 }, { raised: "42" }, {}, "raised"]) {
      assert.deepEqual(await reply(x1.ch.push("update_campaign", payload)), { status: "error", response: { reason: "invalid_update" } })
    }
    await x2.c.noEvent("campaign:x", "campaign_updated")
    const got = await api(base, "GET", "/api/campaigns/x")
    assert.deepEqual(got.json, { donors: 3, goal: 100000000, id: "x", raised: 401 })
  })

  test("ping: replies ok with the same payload, JSON or binary", async () => {
    // (phoenix.js sends {} for a null payload.)
    for (const p of [{ hello: "world", n: [1, 2, 3] }, "just a string", 42, [1, "two"], {}]) {
      assert.deepEqual(await reply(x1.ch.push("ping", p)), { status: "ok", response: p })
    }
    const bytes = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0, 1])
    const r = await reply(x1.ch.push("ping", bytes.buffer))
    assert.equal(r.status, "ok")
    assert.ok(r.response instanceof ArrayBuffer)
    assert.deepEqual(new Uint8Array(r.response), bytes)
  })

  test("request_campaign_update: reply to the sender only; unknown is fresh and not created", async () => {
    const other = await admin()
    assert.equal(other.state.active_campaigns, 2)
    other.c.clear()
    const r = await reply(dash.ch.push("request_campaign_update", { campaign_id: "x" }))
    assert.deepEqual(r, { status: "ok", response: { donors: 3, goal: 100000000, id: "x", raised: 401 } })
    const u = await reply(dash.ch.push("request_campaign_update", { campaign_id: "never-seen" }))
    assert.deepEqual(u, { status: "ok", response: fresh("never-seen") })
    for (const payload of [{}, { campaign_id: 5 }, { campaign_id: null }, "x"]) {
      assert.deepEqual(await reply(dash.ch.push("request_campaign_update", payload)), { status: "error", response: { reason: "invalid_request" } })
    }
    await other.c.none((m) => m.topic === "dashboard:live" && m.event !== "presence_diff" && m.event !== "presence_state", "a message for the other admin")
    assert.equal((await admin()).state.active_campaigns, 2)
  })

  test("dashboard_state: recent donations newest first, at most 10; totals", async () => {
    for (let i = 1; i <= 10; i++) {
      assert.equal((await reply(x1.ch.push("new_donation", { amount: i, donor: "R" + i }))).status, "ok")
      for (const c of [x1.c, x2.c]) await c.event("campaign:x", "donation_received", (d) => d.donor === "R" + i)
      await dash.c.event("dashboard:live", "new_donation", (d) => d.donor === "R" + i)
    }
    const { state } = await admin()
    assert.equal(state.active_campaigns, 2)
    assert.equal(state.total_raised, 401 + 55)
    assert.equal(state.recent_donations.length, 10)
    assert.deepEqual(state.recent_donations[0], { amount: 10, campaign: "x", donor: "R10" })
    assert.deepEqual(state.recent_donations[9], { amount: 1, campaign: "x", donor: "R1" })
  })

  test("POST /api/bank_transfers: 201 with the campaign; broadcasts with source bank_transfer", async () => {
    const before = (await api(base, "GET", "/api/campaigns/x")).json
    const r = await api(base, "POST", "/api/bank_transfers", { campaign_id: "x", amount: 1000, donor: "Carol" })
    assert.equal(r.status, 201)
    assert.match(r.type, /^application\/json/)
    assert.deepEqual(r.json, { ...before, donors: before.donors + 1, raised: before.raised + 1000 })
    const got = await x2.c.event("campaign:x", "donation_received", (d) => d.donor === "Carol")
    assert.equal(keys(got), "amount,donor,source,timestamp")
    assert.equal(got.source, "bank_transfer")
    assert.match(got.timestamp, isoUTC)
    await x1.c.event("campaign:x", "donation_received", (d) => d.donor === "Carol")
    const d = await dash.c.event("dashboard:live", "new_donation", (d) => d.donor === "Carol")
    assert.deepEqual(d, { amount: 1000, campaign_id: "x", donor: "Carol", timestamp: got.timestamp })
    // A donation makes a campaign known.
    assert.equal((await api(base, "POST", "/api/bank_transfers", { campaign_id: "wire-only", amount: 7, donor: "Dee" })).status, 201)
    await dash.c.event("dashboard:live", "new_donation", (d) => d.campaign_id === "wire-only")
    assert.equal((await admin()).state.active_campaigns, 3)
  })

  test("POST /api/bank_transfers: 422 when invalid or not JSON", async () => {
    for (const body of [
      { campaign_id: "x", amount: 0, donor: "Carol" },
      { campaign_id: "x", amount: 1.5, donor: "Carol" },
      { campaign_id: "x", amount: 5, donor: "" },
      { campaign_id: "", amount: 5, donor: "Carol" },
      { amount: 5, donor: "Carol" },
      [1],
    ]) {
      const r = await api(base, "POST", "/api/bank_transfers", body)
      assert.equal(r.status, 422, JSON.stringify(body))
      assert.deepEqual(r.json, { error: "invalid_donation" })
    }
    const r = await api(base, "POST", "/api/bank_transfers", "this is not json")
    assert.equal(r.status, 422)
    assert.equal(typeof r.json.error, "string")
    await x2.c.noEvent("campaign:x", "donation_received")
    await dash.c.noEvent("dashboard:live", "new_donation", 0)
  })

  test("GET /api/campaigns/<id>: 200 with the figures; unknown is fresh and not created", async () => {
    const r = await api(base, "GET", "/api/campaigns/x")
    assert.equal(r.status, 200)
    assert.match(r.type, /^application\/json/)
    assert.equal(keys(r.json), "donors,goal,id,raised")
    const u = await api(base, "GET", "/api/campaigns/" + encodeURIComponent("never seen/é"))
    assert.deepEqual(u.json, fresh("never seen/é"))
    assert.equal((await admin()).state.active_campaigns, 3)
  })

  test("POST /api/disconnect: closes that user's sockets (they reconnect), 204; 422 without user_id", async () => {
    const a = new Client(base, { params: { user_id: "u3" } })
    const b = new Client(base, { params: { user_id: "u3" } })
    const keep = new Client(base, { params: { user_id: "u4" } })
    const chA = a.channel("campaign:x", { user_id: "u3" })
    await join(chA)
    await join(b.channel("campaign:z", {}))
    await join(keep.channel("campaign:z", {}))
    const r = await api(base, "POST", "/api/disconnect", { user_id: "u3" })
    assert.equal(r.status, 204)
    assert.equal(r.text, "")
    const deadline = Date.now() + 3000
    while ((a.closes.length === 0 || b.closes.length === 0) && Date.now() < deadline) await sleep(10)
    assert.deepEqual([a.closes[0], b.closes[0]], [1001, 1001])
    assert.equal(keep.closes.length, 0)
    // The others see u3 leave; phoenix.js reconnects and rejoins by itself.
    await x2.c.event("campaign:x", "presence_diff", (d) => "u3" in d.leaves)
    await a.event("campaign:x", "campaign_data", () => true, 5000)
    for (const body of [{}, { user_id: 5 }, "not json"]) {
      const r = await api(base, "POST", "/api/disconnect", body)
      assert.equal(r.status, 422, JSON.stringify(body))
      assert.equal(typeof r.json.error, "string")
    }
  })

  test("long-poll: the same channel over /socket/longpoll", async () => {
    const c = new Client(base, { params: { user_id: "lp1" }, longpoll: true })
    const ch = c.channel("campaign:x", { user_id: "lp1" })
    await join(ch)
    assert.equal((await c.event("campaign:x", "campaign_data", () => true, 5000)).id, "x")
    assert.ok("u1" in (await c.event("campaign:x", "presence_state")))
    await x1.c.event("campaign:x", "presence_diff", (d) => "lp1" in d.joins)
    assert.deepEqual(await reply(ch.push("new_donation", { amount: 3, donor: "Lee" })), { status: "ok", response: {} })
    await x1.c.event("campaign:x", "donation_received", (d) => d.donor === "Lee")
    await c.event("campaign:x", "donation_received", (d) => d.donor === "Lee", 5000)
    assert.deepEqual(await reply(ch.push("ping", { x: 1 })), { status: "ok", response: { x: 1 } })
    await c.disconnect()
  })

  test("campaign_refreshed: active campaigns get fresh totals every -refresh", async () => {
    const want = (await api(base, "GET", "/api/campaigns/x")).json
    const got = await x1.c.event("campaign:x", "campaign_refreshed", (c) => c.raised === want.raised, 3000)
    assert.deepEqual(got, want)
  })

  test("an event the channel does not handle crashes it (phx_error), as in the reference app", async () => {
    const { c, ch } = await campaign("crash")
    let errored = false
    ch.onError(() => { errored = true })
    ch.push("no_such_event", {}, 300) // never answered: the channel crashes
    const deadline = Date.now() + 2000
    while (!errored && Date.now() < deadline) await sleep(10)
    assert.ok(errored, "no phx_error")
    await c.disconnect()
  })

  test("save the figures that must survive a restart", async () => {
    const state = {
      x: (await api(base, "GET", "/api/campaigns/x")).json,
      y: (await api(base, "GET", "/api/campaigns/y")).json,
      wire: (await api(base, "GET", "/api/campaigns/wire-only")).json,
      dashboard: (await admin()).state,
    }
    assert.ok(state.x.raised > 0)
    writeFileSync(stateFile, JSON.stringify(state))
  })
} else if (phase === "after") {
  const saved = JSON.parse(readFileSync(stateFile, "utf8"))

  test("totals survive the restart", async () => {
    assert.deepEqual((await api(base, "GET", "/api/campaigns/x")).json, saved.x)
    assert.deepEqual((await api(base, "GET", "/api/campaigns/y")).json, saved.y)
    assert.deepEqual((await api(base, "GET", "/api/campaigns/wire-only")).json, saved.wire)
    const { data } = await campaign("x", "after")
    assert.deepEqual(data, saved.x)
    assert.deepEqual((await admin()).state, saved.dashboard)
  })

  test("donors stay distinct across the restart", async () => {
    const { c, ch } = await campaign("x")
    assert.equal((await reply(ch.push("new_donation", { amount: 5, donor: "Ann" }))).status, "ok")
    await c.event("campaign:x", "donation_received")
    assert.deepEqual((await api(base, "GET", "/api/campaigns/x")).json, { ...saved.x, raised: saved.x.raised + 5 })
    assert.equal((await reply(ch.push("new_donation", { amount: 5, donor: "Newcomer" }))).status, "ok")
    assert.deepEqual((await api(base, "GET", "/api/campaigns/x")).json, { ...saved.x, raised: saved.x.raised + 10, donors: saved.x.donors + 1 })
  })
} else {
  throw new Error("usage: contract.mjs <base-url> <admin-token> <state-file> before|after")
}
