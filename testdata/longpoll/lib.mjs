// Helpers for the long-poll end-to-end scripts: each script drives the
// unmodified phoenix.js client against a Plume server whose socket URL is
// argv[2], prints one line per step on stdout (read by longpoll_node_test.go)
// and exits non-zero with the reason on stderr if anything goes wrong.
import {Socket, LongPoll} from "phoenix"

export {Socket, LongPoll}

export const url = process.argv[2]

export function out(v) {
  process.stdout.write((typeof v === "string" ? v : JSON.stringify(v)) + "\n")
}

export function fail(msg) {
  process.stderr.write("FAIL: " + msg + "\n")
  process.exit(1)
}

process.on("unhandledRejection", (e) => fail(e && e.stack || String(e)))
process.on("uncaughtException", (e) => fail(e && e.stack || String(e)))
setTimeout(() => fail("script deadline passed"), 30000).unref()

// push resolves with {status, response} or rejects on timeout.
export function push(ch, event, payload, timeout = 5000) {
  return new Promise((resolve, reject) => {
    ch.push(event, payload, timeout)
      .receive("ok", (r) => resolve({status: "ok", response: r}))
      .receive("error", (r) => resolve({status: "error", response: r}))
      .receive("timeout", () => reject(new Error("push timed out: " + event)))
  })
}

// nextEvent resolves with the payload of the next event on ch.
export function nextEvent(ch, event, timeout = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no " + event + " event")), timeout)
    const ref = ch.on(event, (p) => {
      clearTimeout(t)
      ch.off(event, ref)
      resolve(p)
    })
  })
}

// joins returns a function that resolves on the n-th successful join of ch
// (1 is the first join, 2 the first rejoin, ...). Call it before ch.join().
export function joins(ch) {
  let count = 0
  const waiters = []
  const notify = () => {
    count++
    for (const w of waiters.splice(0)) {
      if (count >= w.n) { w.resolve() } else { waiters.push(w) }
    }
  }
  return {
    start(timeout = 5000) {
      ch.join(timeout)
        .receive("ok", notify)
        .receive("error", (r) => fail("join refused: " + JSON.stringify(r)))
    },
    wait(n, timeout = 10000) {
      if (count >= n) { return Promise.resolve() }
      return new Promise((resolve, reject) => {
        setTimeout(() => reject(new Error(`join ${n} did not happen`)), timeout).unref()
        waiters.push({n, resolve})
      })
    },
  }
}
