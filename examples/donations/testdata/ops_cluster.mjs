// The operations features across two demo nodes on one broker, with the
// official phoenix client under Node (ws transport):
//
//   node ops_cluster.mjs <node-a-url> <node-b-url> <user-id> <token-from-node-b> <plume-binary> <broadcast-secret>
//
// A token rendered by node B opens a socket on node A (the nodes share
// SECRET_KEY_BASE); `plume broadcast` through either node's API reaches the
// clients on both; /api/disconnect on one node closes the user's socket on
// the other.
import { test, after } from "node:test"
import assert from "node:assert/strict"
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import { Client, api, join, sleep } from "./lib.mjs"

const [nodeA, nodeB, uid, token, plume, broadcastSecret] = process.argv.slice(2)
const topic = "campaign:ops-cluster-" + randomBytes(4).toString("hex")

after(() => Client.closeAll())

function broadcast(base, event, payload) {
  return new Promise((resolve) => {
    execFile(plume, ["broadcast", "-url", base + "/api/broadcast", "-topic", topic, "-event", event, "-payload", JSON.stringify(payload)],
      { env: { ...process.env, PLUME_BROADCAST_SECRET: broadcastSecret }, timeout: 10000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }))
  })
}

let onA, onB

test("node B's page token opens a socket on node A; both nodes reach the topic", async () => {
  onA = new Client(nodeA, { authToken: token })
  onB = new Client(nodeB, { params: { user_id: "ops-b" } })
  await join(onA.channel(topic, {}))
  await join(onB.channel(topic, { user_id: "ops-b" }))
  // A node subscribes to a topic on the broker asynchronously after the
  // first join: wait until a broadcast through each node reaches the
  // other's client before the tests proper.
  for (const [base, other] of [[nodeA, onB], [nodeB, onA]]) {
    const deadline = Date.now() + 5000
    for (let seen = false; !seen;) {
      assert.ok(Date.now() < deadline, "the nodes did not subscribe to " + topic)
      assert.equal((await broadcast(base, "ready", {})).code, 0)
      seen = await other.event(topic, "ready", () => true, 200).then(() => true, () => false)
    }
  }
  await sleep(200)
  onA.clear()
  onB.clear()
})

test("plume broadcast through either node's API reaches the clients on both", async () => {
  for (const [name, base] of [["A", nodeA], ["B", nodeB]]) {
    const payload = { text: "via node " + name }
    const r = await broadcast(base, "announcement", payload)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(await onA.event(topic, "announcement", () => true, 5000), payload)
    assert.deepEqual(await onB.event(topic, "announcement", () => true, 5000), payload)
  }
})

test("/api/disconnect on node B closes the token user's socket on node A", async () => {
  const r = await api(nodeB, "POST", "/api/disconnect", { user_id: uid })
  assert.equal(r.status, 204)
  const deadline = Date.now() + 5000
  while (onA.closes.length === 0 && Date.now() < deadline) await sleep(10)
  assert.deepEqual(onA.closes, [1001])
  assert.deepEqual(onB.closes, [])
})
