// The demo in a real browser: Debian's Chromium driven by playwright-core.
//
//   node browser.mjs <base-url> <admin-token> <demo.png> <shots-dir>
//
// Two viewers of one campaign, a donation in one seen in the other, the
// presence list, the donor's error messages, the dashboard, and recovery
// after the server restarts. It prints one line per step. For the restart
// it prints STOP and waits for "stopped" on stdin, checks what a donor sees
// while the server is down, then prints START and waits for "started"
// while the Go test starts the server again on the same address.
import { chromium } from "playwright-core"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"

const [base, token, demoPNG, shots] = process.argv.slice(2)
const campaignURL = base + "/campaigns/clean-water"

const lines = createInterface({ input: process.stdin })
const commands = []
let wake = null
lines.on("line", (l) => {
  commands.push(l.trim())
  if (wake) wake()
})
async function command(name, ms = 60000) {
  const deadline = Date.now() + ms
  while (!commands.includes(name)) {
    if (Date.now() > deadline) throw new Error("no " + name + " from the test")
    await new Promise((r) => { wake = r; setTimeout(r, 100) })
  }
}

const step = (s) => console.log("STEP " + s)
const pageErrors = []

function assert(cond, msg) {
  if (!cond) throw new Error(msg)
}

async function open(context, url) {
  const page = await context.newPage()
  page.setDefaultTimeout(10000)
  page.on("pageerror", (e) => pageErrors.push(url + ": " + e.message))
  page.on("console", (m) => {
    if (m.type() === "error") console.log("CONSOLE " + m.text())
  })
  await page.goto(url)
  return page
}

const live = (page) => page.waitForSelector('#conn[data-state="live"]')
const text = (page, sel) => page.locator(sel).first().innerText()

// waitText waits until sel's text satisfies want (a string to contain, or a
// predicate).
async function waitText(page, sel, want, label) {
  const deadline = Date.now() + 10000
  let last = ""
  for (;;) {
    last = (await page.locator(sel).first().innerText().catch(() => "")) || ""
    if (typeof want === "function" ? want(last) : last.includes(want)) return last
    if (Date.now() > deadline) throw new Error(`${label || sel}: got ${JSON.stringify(last)}, want ${want}`)
    await page.waitForTimeout(25)
  }
}

async function donate(page, donor, amount) {
  await page.fill("#donor", donor)
  await page.fill("#amount", amount)
  await page.click("#give")
}

const userDataDir = mkdtempSync(join(tmpdir(), "plume-chromium-"))
let context
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1200, height: 900 },
    deviceScaleFactor: 1,
  })

  step("two viewers open the campaign")
  const a = await open(context, campaignURL)
  await live(a)
  const b = await open(context, campaignURL)
  await live(b)
  const viewerA = await a.evaluate(() => sessionStorage.getItem("plume-viewer"))
  const viewerB = await b.evaluate(() => sessionStorage.getItem("plume-viewer"))
  assert(viewerA && viewerB && viewerA !== viewerB, `viewer ids ${viewerA} ${viewerB}`)
  assert((await text(b, "#title")) === "Clean water", "title")
  await waitText(b, "#raised", "$0")
  await waitText(b, "#goal", "$1,000,000")

  step("each sees the other online (Presence onSync)")
  for (const [p, me, other] of [[a, viewerA, viewerB], [b, viewerB, viewerA]]) {
    await waitText(p, "#online", (t) => t.includes(me) && t.includes(other), "online list")
    await waitText(p, "#online-count", "(2)")
    await waitText(p, "#online li.me", me)
  }

  step("a donation in one page shows in the other")
  await donate(a, "Ada Lovelace", "25")
  await waitText(a, "#donate-status", "Thank you, Ada Lovelace! Your $25 donation is in.")
  await waitText(b, "#feed li", (t) => t.includes("Ada Lovelace") && t.includes("$25"), "B's feed")
  await waitText(b, "#raised", "$25")
  await waitText(b, "#donors", "1")
  assert((await b.locator("#progress").evaluate((e) => e.value)) > 0, "progress bar did not move")

  step("the donor sees the server's validation error")
  await donate(a, "Ada Lovelace", "0")
  await waitText(a, "#donate-status.error", "Please enter your name")
  await donate(a, "", "5")
  await waitText(a, "#donate-status.error", "Please enter your name")
  await donate(a, "x".repeat(101), "5")
  await waitText(a, "#donate-status.error", "Please enter your name")
  assert((await b.locator("#feed li").count()) === 1, "an invalid donation reached the feed")

  step("a bank transfer over HTTP shows, with its badge")
  const r = await fetch(base + "/api/bank_transfers", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ campaign_id: "clean-water", amount: 12000, donor: "Grace Hopper" }),
  })
  assert(r.status === 201, "bank transfer " + r.status)
  await waitText(b, "#feed li", (t) => t.includes("Grace Hopper") && t.toLowerCase().includes("bank transfer"), "bank transfer in feed")
  await waitText(b, "#raised", "$145")
  await waitText(b, "#donors", "2")

  step("the other viewer donates back")
  await donate(b, "Alan Turing", "10.50")
  await waitText(b, "#donate-status", "Thank you, Alan Turing")
  await waitText(a, "#feed li", (t) => t.includes("Alan Turing") && t.includes("$10.50"), "A's feed")
  await waitText(a, "#raised", "$155.50")
  await waitText(a, "#donors", "3")
  await b.fill("#amount", "")
  await b.locator("#amount").blur()

  step("screenshot " + demoPNG)
  await b.waitForTimeout(1800) // let the new-donation highlight fade
  await b.screenshot({ path: demoPNG, fullPage: true })

  step("phone-sized screen: no horizontal scrolling")
  await b.setViewportSize({ width: 390, height: 844 })
  await b.waitForTimeout(100)
  const overflow = await b.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  assert(overflow <= 0, "the page scrolls sideways on a phone by " + overflow + "px")
  await b.screenshot({ path: join(shots, "campaign-phone.png"), fullPage: true })
  await b.setViewportSize({ width: 1200, height: 900 })

  step("the index lists the campaign with its figures")
  const idx = await open(context, base + "/")
  await waitText(idx, ".campaign-card", (t) => t.includes("Clean water") && t.includes("$155.50") && t.includes("3 donors"), "index card")
  await idx.screenshot({ path: join(shots, "index.png"), fullPage: true })
  await idx.setViewportSize({ width: 390, height: 844 })
  await idx.screenshot({ path: join(shots, "index-phone.png"), fullPage: true })
  await idx.close()

  step("the dashboard asks for the token")
  const d = await open(context, base + "/dashboard")
  await d.fill("#token", "wrong-token")
  await d.click("#token-form button")
  await waitText(d, "#login-error", "That token is not right.")
  assert(await d.locator("#board").isHidden(), "the board shows after a wrong token")
  await d.fill("#token", token)
  await d.click("#token-form button")
  await d.waitForSelector("#board", { state: "visible" })
  await live(d)
  await waitText(d, "#total-raised", "$155.50")
  await waitText(d, "#campaign-count", "1")
  await waitText(d, "#admin-count", "1")
  await waitText(d, "#recent tr", "Alan Turing")
  assert((await d.locator("#recent tr").count()) === 3, "recent donations")

  step("the dashboard sees new donations and looks campaigns up")
  await donate(a, "Margaret Hamilton", "100")
  await waitText(d, "#recent tr", "Margaret Hamilton")
  await waitText(d, "#total-raised", "$255.50")
  await d.fill("#lookup-id", "clean-water")
  await d.click("#lookup button")
  await waitText(d, "#lookup-result", "clean-water: $255.50 raised of $1,000,000 from 4 donors.")
  await d.fill("#lookup-id", "never-seen")
  await d.click("#lookup button")
  await waitText(d, "#lookup-result", "never-seen: $0 raised")
  await d.waitForTimeout(1800)
  await d.screenshot({ path: join(shots, "dashboard.png"), fullPage: true })
  await d.setViewportSize({ width: 390, height: 844 })
  await d.waitForTimeout(100)
  const dOverflow = await d.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  assert(dOverflow <= 0, "the dashboard scrolls sideways on a phone by " + dOverflow + "px")
  await d.screenshot({ path: join(shots, "dashboard-phone.png"), fullPage: true })

  step("the pages recover by themselves when the server restarts")
  for (const p of [a, b, d]) {
    await p.evaluate(() => {
      window.__states = []
      new MutationObserver(() => window.__states.push(document.getElementById("conn").dataset.state))
        .observe(document.getElementById("conn"), { attributes: true, attributeFilter: ["data-state"] })
    })
  }
  console.log("STOP")
  await command("stopped")
  await a.waitForSelector('#conn[data-state="reconnecting"]')
  await donate(a, "Offline Olga", "5")
  await waitText(a, "#donate-status.error", "You are offline, so nothing was sent.")
  console.log("START")
  await command("started")
  for (const p of [a, b, d]) {
    await p.waitForFunction(() => window.__states.includes("reconnecting") && document.getElementById("conn").dataset.state === "live", null, { timeout: 20000 })
  }
  await waitText(b, "#raised", "$255.50")
  await waitText(b, "#donors", "4")
  await waitText(b, "#online-count", "(2)")
  await waitText(d, "#total-raised", "$255.50")
  await donate(a, "After Restart", "5")
  await waitText(a, "#donate-status", "Thank you, After Restart")
  await waitText(b, "#feed li", "After Restart")
  await waitText(b, "#raised", "$260.50")
  await waitText(d, "#recent tr", "After Restart")

  assert(pageErrors.length === 0, "uncaught errors in the pages: " + pageErrors.join("; "))
  console.log("DONE")
} catch (e) {
  console.log("FAIL " + (e && e.stack ? e.stack : e))
  process.exitCode = 1
} finally {
  if (context) await context.close().catch(() => {})
  rmSync(userDataDir, { recursive: true, force: true })
  lines.close()
}
