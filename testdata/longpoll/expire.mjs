// phoenix.js LongPoll: the server ends the session while the client's polls
// are held up; the next poll's 410 (while holding a token) makes the client
// reconnect and rejoin.
import {Socket, LongPoll, url, out, push, joins} from "./lib.mjs"

const socket = new Socket(url, {
  transport: LongPoll,
  reconnectAfterMs: () => 50,
  rejoinAfterMs: () => 50,
})
socket.onClose((e) => out({close: e.code, reason: e.reason}))
socket.connect()
const ch = socket.channel("room:exp", {})
const j = joins(ch)
j.start()
await j.wait(1)
out("joined")
await j.wait(2)
out("rejoined")
out({ping: await push(ch, "ping", {after: "rejoin"})})
socket.disconnect(() => out("done"))
