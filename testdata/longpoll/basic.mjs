// phoenix.js LongPoll: connect, join, push with reply, auth token, binary
// push, broadcasts, and a forced disconnect by socket id with rejoin.
import {Socket, LongPoll, url, out, push, nextEvent, joins} from "./lib.mjs"

const socket = new Socket(url, {
  transport: LongPoll,
  params: {user: "js1"},
  authToken: "tok-js",
  reconnectAfterMs: () => 50,
  rejoinAfterMs: () => 50,
})
socket.onClose((e) => out({close: e.code}))
socket.connect()
const ch = socket.channel("room:js", {})
const j = joins(ch)
j.start()
await j.wait(1)
out("joined")

out({ping: await push(ch, "ping", {a: 1})})
out({whoami: await push(ch, "whoami", {})})
out({bin: await push(ch, "bin", new Uint8Array([1, 2, 3, 250]).buffer)})

const shouted = nextEvent(ch, "shouted")
const shout = await push(ch, "shout", {m: "hi"})
out({shout: shout.status, shouted: await shouted})

const news = nextEvent(ch, "news")
out("ready for news")
out({news: await news})

out("ready for disconnect")
await j.wait(2)
out("rejoined")
out({ping: await push(ch, "ping", {b: 2})})
socket.disconnect(() => out("done"))
