// Helpers for the end-to-end tests: the official phoenix client under Node,
// on the ws package, against the real donations binary.
import { Socket, LongPoll, Presence } from "phoenix"
import WebSocket from "ws"

export { Socket, LongPoll, Presence, WebSocket }

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// ISO 8601 in UTC with a Z, fractional seconds allowed.
export const isoUTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/

// Client is one phoenix Socket that records every message it receives, for
// tests to wait on (take) or to refute (none).
export class Client {
  constructor(base, { params = {}, longpoll = false, ...opts } = {}) {
    this.msgs = []
    this.waiters = new Set()
    this.closes = []
    const url = base.replace(/^http/, "ws") + "/socket"
    this.socket = new Socket(url, {
      transport: longpoll ? LongPoll : WebSocket,
      params,
      reconnectAfterMs: () => 50,
      rejoinAfterMs: () => 100,
      timeout: 5000,
      ...opts,
    })
    this.socket.onMessage((m) => {
      this.msgs.push(m)
      for (const w of this.waiters) w()
    })
    this.socket.onClose((e) => this.closes.push(e && e.code))
    this.socket.connect()
    Client.all.push(this)
  }

  channel(topic, payload) {
    return this.socket.channel(topic, payload)
  }

  // take waits for the first recorded message that matches pred, removes
  // it and returns it.
  take(pred, label, ms = 3000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.msgs.findIndex(pred)
        if (i < 0) return false
        const [m] = this.msgs.splice(i, 1)
        this.waiters.delete(check)
        clearTimeout(timer)
        resolve(m)
        return true
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`timed out after ${ms} ms waiting for ${label}; received and not taken: ${JSON.stringify(this.msgs.map(brief))}`))
      }, ms)
      if (!check()) this.waiters.add(check)
    })
  }

  // event waits for event on topic (payload matching pred, if given).
  event(topic, event, pred = () => true, ms) {
    return this.take((m) => m.topic === topic && m.event === event && pred(m.payload), `${event} on ${topic}`, ms).then((m) => m.payload)
  }

  // none fails if a message matching pred is there or arrives within ms.
  async none(pred, label, ms = 250) {
    await sleep(ms)
    const m = this.msgs.find(pred)
    if (m) throw new Error(`unexpected ${label}: ${JSON.stringify(brief(m))}`)
  }

  noEvent(topic, event, ms) {
    return this.none((m) => m.topic === topic && m.event === event, `${event} on ${topic}`, ms)
  }

  // clear forgets what was received so far.
  clear() {
    this.msgs.length = 0
  }

  disconnect() {
    return new Promise((resolve) => this.socket.disconnect(resolve))
  }

  static all = []

  static async closeAll() {
    await Promise.all(Client.all.map((c) => c.disconnect()))
    Client.all = []
  }
}

function brief(m) {
  return { topic: m.topic, event: m.event, payload: m.payload instanceof ArrayBuffer ? "<binary>" : m.payload }
}

// reply resolves with {status, response} for a push (or a join).
export function reply(push) {
  return new Promise((resolve) => {
    for (const status of ["ok", "error", "timeout"]) push.receive(status, (response) => resolve({ status, response }))
  })
}

// join joins ch and returns the ok response, or throws.
export async function join(ch) {
  const r = await reply(ch.join())
  if (r.status !== "ok") throw new Error(`join ${ch.topic}: ${r.status} ${JSON.stringify(r.response)}`)
  return r.response
}

// refusedJoin joins ch, expecting an error reply, and stops the client's
// retries.
export async function refusedJoin(ch) {
  const r = await reply(ch.join())
  ch.leave()
  if (r.status !== "error") throw new Error(`join ${ch.topic}: want an error, got ${r.status} ${JSON.stringify(r.response)}`)
  return r.response
}

export async function api(base, method, path, body) {
  const init = { method, headers: {} }
  if (body !== undefined) {
    init.headers["content-type"] = "application/json"
    init.body = typeof body === "string" ? body : JSON.stringify(body)
  }
  const r = await fetch(base + path, init)
  const text = await r.text()
  return { status: r.status, type: r.headers.get("content-type"), text, json: text ? JSON.parse(text) : undefined }
}
