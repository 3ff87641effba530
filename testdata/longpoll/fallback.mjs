// phoenix.js falls back from a refused WebSocket to LongPoll with
// longPollFallbackMs. Node 20 has no global WebSocket: use the ws package.
import WebSocket from "ws"
import {Socket, LongPoll, url, out, push, joins} from "./lib.mjs"

const socket = new Socket(url, {
  transport: WebSocket,
  longPollFallbackMs: 3000,
  reconnectAfterMs: () => 50,
})
socket.connect()
const ch = socket.channel("room:fb", {})
const j = joins(ch)
j.start()
await j.wait(1)
out({joined: socket.transport === LongPoll ? "LongPoll" : String(socket.transport && socket.transport.name)})
out({whoami: await push(ch, "whoami", {})})
socket.disconnect(() => out("done"))
