// The campaign page's user token in Chromium (playwright-core):
//
//   node ops_browser.mjs <base-url>
//
// The page connects with the token the server rendered into it, keeps it
// across reloads, and when the server refuses it (close 4401) shows that
// the session expired, stops reconnecting, and starts afresh on reload.
import { chromium } from "playwright-core"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const [base] = process.argv.slice(2)
const url = base + "/campaigns/ops-browser"

function assert(cond, msg) {
  if (!cond) throw new Error(msg)
}

const userDataDir = mkdtempSync(join(tmpdir(), "plume-chromium-"))
let context
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  })
  const page = await context.newPage()
  page.setDefaultTimeout(10000)
  const errors = []
  page.on("pageerror", (e) => errors.push(e.message))
  let sockets = []
  page.on("websocket", (ws) => sockets.push(ws.url()))

  const session = () => page.evaluate(() => ({
    id: sessionStorage.getItem("plume-viewer"),
    token: sessionStorage.getItem("plume-viewer-token"),
    pageID: document.querySelector('meta[name="user-id"]').content,
    pageToken: document.querySelector('meta[name="user-token"]').content,
    userToken: window.userToken,
  }))
  const live = () => page.waitForSelector('#conn[data-state="live"]')

  await page.goto(url)
  await live()
  const first = await session()
  assert(first.id === first.pageID && first.token === first.pageToken && first.userToken === first.token, "first load: " + JSON.stringify(first))
  await page.waitForSelector(`#online li.me:has-text("${first.id}")`)
  // The token travels in the WebSocket's protocol header, not the URL.
  assert(sockets.length === 1 && !sockets[0].includes(first.token) && !sockets[0].includes("user_id"), "socket URL " + sockets[0])
  console.log("STEP the page connects with the token the server rendered: " + first.id)

  await page.reload()
  await live()
  const again = await session()
  assert(again.id === first.id && again.token === first.token && again.pageToken !== first.token, "reload: " + JSON.stringify(again))
  await page.waitForSelector(`#online li.me:has-text("${first.id}")`)
  console.log("STEP a reload keeps the tab's user and token")

  // A token the server no longer accepts (here: tampered with).
  await page.evaluate(() => {
    const t = sessionStorage.getItem("plume-viewer-token")
    sessionStorage.setItem("plume-viewer-token", t.slice(0, -10) + (t.at(-10) === "A" ? "B" : "A") + t.slice(-9))
  })
  sockets = []
  await page.reload()
  await page.waitForSelector('#conn[data-state="offline"]')
  const fatal = await page.locator("#fatal").innerText()
  assert(/session has expired/.test(fatal) && /invalid token: unauthorized/.test(fatal) && /Reload the page/.test(fatal), "message: " + fatal)
  await page.waitForTimeout(1500)
  assert(sockets.length === 1, "the page kept reconnecting: " + sockets.length + " WebSockets")
  assert((await page.locator('#conn').getAttribute("data-state")) === "offline", "state after the refusal")
  const forgotten = await session()
  assert(forgotten.id === null && forgotten.token === null, "the refused token was kept: " + JSON.stringify(forgotten))
  console.log("STEP a refused token: \"" + fatal + "\", and no reconnects")

  await page.reload()
  await live()
  const fresh = await session()
  assert(fresh.token === fresh.pageToken && fresh.token !== first.token, "after the refusal: " + JSON.stringify(fresh))
  assert(await page.locator("#fatal").isHidden(), "the message stayed")
  console.log("STEP a reload starts a new session: " + fresh.id)
  assert(errors.length === 0, "page errors: " + errors.join("; "))
  console.log("DONE")
} finally {
  if (context) await context.close()
  rmSync(userDataDir, { recursive: true, force: true })
}
