// Scenario 5b: a raw ws client that sends nothing after the handshake is
// closed by the server's idle timeout.
import { run, emit, url, WebSocket } from "./lib.mjs"

run(async () => {
  // The server's idle timer cannot start before the request is made.
  const requested = Date.now()
  const ws = new WebSocket(url + "/websocket?vsn=2.0.0")
  ws.on("open", () => emit("open"))
  ws.on("error", (e) => emit("error", { msg: String(e.message) }))
  const closed = new Promise((resolve) => {
    ws.on("close", (code, reason) => {
      emit("close", { code, reason: reason.toString(), afterRequestMs: Date.now() - requested })
      resolve()
    })
  })
  await closed
})
