// Shared helpers for the end-to-end scenarios. Each scenario is run by the Go
// tests as `node <scenario>.mjs <ws-url> [json-options]`; it prints one JSON
// object per line on stdout ({"ev": ..., ...}) describing what the official
// phoenix client observed, and the Go test asserts on those lines. The Go
// side can send commands, one word per line, on stdin.
import { Socket } from "phoenix"
import WebSocket from "ws"
import { createInterface } from "node:readline"

export { Socket, WebSocket }

// The socket endpoint, e.g. ws://127.0.0.1:1234/socket.
export const url = process.argv[2]
// Scenario options passed by the Go test as JSON.
export const opts = process.argv[3] ? JSON.parse(process.argv[3]) : {}

const started = Date.now()

// emit prints one observation.
export function emit(ev, fields = {}) {
  process.stdout.write(JSON.stringify({ ev, ms: Date.now() - started, ...fields }) + "\n")
}

// newSocket returns a phoenix Socket on the ws transport (Node 20 has no
// global WebSocket).
export function newSocket(options = {}) {
  return new Socket(url, { transport: WebSocket, ...options })
}

// describe turns a payload into JSON-friendly form; ArrayBuffers become
// {arraybuffer: true, bytes: [...]}.
export function describe(v) {
  if (v instanceof ArrayBuffer) {
    return { arraybuffer: true, bytes: Array.from(new Uint8Array(v)) }
  }
  return v
}

// reply resolves with the first of the given statuses a Push receives.
export function reply(push, statuses = []) {
  return new Promise((resolve) => {
    for (const status of ["ok", "error", "timeout", ...statuses]) {
      push.receive(status, (response) => resolve({ status, response: describe(response) }))
    }
  })
}

// until polls cond every 5 ms and rejects after timeoutMs.
export function until(cond, label, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs
    const tick = () => {
      let v
      try {
        v = cond()
      } catch (e) {
        reject(e)
        return
      }
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

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// Commands from the Go test, one per stdin line.
const commands = []
const waiters = []
createInterface({ input: process.stdin }).on("line", (line) => {
  line = line.trim()
  const i = waiters.findIndex((w) => w.name === line)
  if (i >= 0) {
    waiters.splice(i, 1)[0].resolve()
  } else {
    commands.push(line)
  }
})

// command waits for the Go test to send the line name.
export function command(name, timeoutMs = 5000) {
  const i = commands.indexOf(name)
  if (i >= 0) {
    commands.splice(i, 1)
    return Promise.resolve()
  }
  return new Promise((resolve, reject) => {
    const w = { name, resolve }
    waiters.push(w)
    setTimeout(() => {
      const j = waiters.indexOf(w)
      if (j >= 0) {
        waiters.splice(j, 1)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for command ${name}`))
      }
    }, timeoutMs).unref()
  })
}

// run runs a scenario: "done" on success, "fatal" and exit code 1 on any
// error or when the scenario takes longer than limitMs.
export function run(scenario, limitMs = 20000) {
  const fail = (e) => {
    emit("fatal", { msg: String(e && e.stack ? e.stack : e) })
    process.exit(1)
  }
  process.on("uncaughtException", fail)
  process.on("unhandledRejection", fail)
  setTimeout(() => fail(new Error(`scenario did not finish within ${limitMs} ms`)), limitMs).unref()
  scenario().then(() => {
    emit("done")
    process.exit(0)
  }, fail)
}
