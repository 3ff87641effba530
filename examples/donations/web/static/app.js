// The donations demo's pages, on the official phoenix client (Socket,
// Channel, Presence), which the server serves from node_modules.
//
// Amounts on the wire are integers in cents; the pages show dollars.

const $ = (id) => document.getElementById(id)
const page = document.body.dataset.page

// ---------------------------------------------------------------------------
// Formatting

const dollars = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 0, maximumFractionDigits: 0 })
const cents = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 })
const count = new Intl.NumberFormat("en-US")
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" })

function money(c) {
  if (typeof c !== "number" || !Number.isFinite(c)) return "–"
  return c % 100 === 0 ? dollars.format(c / 100) : cents.format(c / 100)
}

function time(iso) {
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? "" : clock.format(d)
}

// toCents turns what the donor typed ("25", "$1,000.50") into cents. Text
// that is not an amount is sent as typed, so that the server's validation,
// not this script's, decides, and its answer is what the donor sees.
function toCents(text) {
  const t = text.trim().replace(/^\$/, "").replace(/,/g, "")
  const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(t)
  if (!m) return t
  return Number(m[1]) * 100 + Number((m[2] || "").padEnd(2, "0"))
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v
    else if (k === "text") e.textContent = v
    else e.setAttribute(k, v)
  }
  for (const c of children) e.append(c)
  return e
}

function setStatus(node, kind, text) {
  node.className = "status" + (kind ? " " + kind : "")
  node.textContent = text
}

function fatal(text) {
  const f = $("fatal")
  if (f) {
    f.textContent = text
    f.hidden = false
  }
}

// ---------------------------------------------------------------------------
// Connection state: connecting (never been live), live (socket open and
// channel joined), reconnecting (was live, lost it; phoenix.js retries on
// its own, and rejoins the channel once the server is back).

const connLabels = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", offline: "Offline" }

function connection(socket, channel) {
  const node = $("conn")
  let everLive = false
  let done = false // stopped: the socket's late close events must not touch the pill
  const set = (state) => {
    if (!node || done) return
    node.dataset.state = state
    node.querySelector(".conn-label").textContent = connLabels[state]
  }
  const lost = () => set(everLive ? "reconnecting" : "connecting")
  set("connecting")
  socket.onError(lost)
  socket.onClose(lost)
  channel.onError(lost)
  return {
    joined() {
      everLive = true
      set("live")
    },
    stopped() {
      set("offline")
      done = true
    },
  }
}

async function loadPhoenix() {
  try {
    return await import("/assets/phoenix.mjs")
  } catch (e) {
    fatal("The page could not load the phoenix client: " + (e && e.message ? e.message : e))
    const node = $("conn")
    if (node) {
      node.dataset.state = "offline"
      node.querySelector(".conn-label").textContent = connLabels.offline
    }
    return null
  }
}

// ---------------------------------------------------------------------------
// Campaign page

// viewer is this tab's user: its id, which names it in the presence list,
// and the token that proves it. The server renders a fresh guest and its
// signed token (a Phoenix.Token) into every campaign page, as
// <meta name="user-id"> and <meta name="user-token">: Phoenix's
// window.userToken, in meta tags because the Content-Security-Policy allows
// no inline script. The tab keeps the pair in sessionStorage, so that a
// reload stays the same viewer. A page without a token (a server without
// user tokens) falls back to an id of the tab's own, sent unsigned as the
// user_id param, as the demo contract allows.
function viewer() {
  const meta = (name) => {
    const m = document.querySelector(`meta[name="${name}"]`)
    return m ? m.content : ""
  }
  let id = sessionStorage.getItem("plume-viewer")
  let token = sessionStorage.getItem("plume-viewer-token")
  if (meta("user-token")) {
    if (!id || !token) {
      id = meta("user-id")
      token = meta("user-token")
      sessionStorage.setItem("plume-viewer", id)
      sessionStorage.setItem("plume-viewer-token", token)
    }
  } else {
    token = null
    if (!id) {
      id = "guest-" + String(Math.floor(1000 + Math.random() * 9000))
      sessionStorage.setItem("plume-viewer", id)
    }
  }
  window.userToken = token
  return { id, token }
}

// forgetViewer drops the tab's user, so that the next load of the page
// starts afresh with the token the server renders into it.
function forgetViewer() {
  sessionStorage.removeItem("plume-viewer")
  sessionStorage.removeItem("plume-viewer-token")
}

// Close codes of refused connections (the server's Socket.RefuseWithClose).
const closeUnauthorized = 4401

const donateErrors = {
  invalid_donation: "Please enter your name (up to 100 characters) and an amount above $0, in dollars and cents.",
  storage_error: "Your donation could not be saved, so it was not made. Please try again.",
}

const avatarColors = ["#5b4bdb", "#147a4b", "#c2410c", "#0e7490", "#a21caf", "#b45309", "#1d4ed8"]

function avatarColor(name) {
  let h = 0
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0
  return avatarColors[h % avatarColors.length]
}

async function campaignPage() {
  const phx = await loadPhoenix()
  if (!phx) return
  const { Socket, Presence } = phx
  const id = document.body.dataset.campaign
  const { id: me, token } = viewer()

  // The token goes as phoenix.js's authToken (in the WebSocket's
  // Sec-WebSocket-Protocol header, not the URL, so no access log keeps it);
  // the server takes the user id from it, not from the join payload.
  const socket = new Socket("/socket", token ? { authToken: token } : { params: { user_id: me } })
  const channel = socket.channel("campaign:" + id, token ? {} : { user_id: me })
  const presence = new Presence(channel)
  const conn = connection(socket, channel)

  // A token that no longer verifies (expired, or signed with another
  // secret: the server restarted without SECRET_KEY_BASE) makes the server
  // accept the WebSocket and close it at once with 4401 and a reason such
  // as "token expired: unauthorized". phoenix.js hands that close to
  // onClose and would reconnect with the same token forever: stop it, and
  // say what to do. Other 4xxx codes are refusals too. Everything else
  // (1006 while the server is down, 1012 while it drains) is retried by
  // phoenix.js as usual. (A long-poll connection would get {"status": 403}
  // instead, which phoenix.js reports as close 1008; this page uses
  // WebSockets only.)
  socket.onClose((e) => {
    if (!e || e.code < 4000 || e.code > 4999) return
    socket.disconnect()
    conn.stopped()
    if (e.code === closeUnauthorized) {
      forgetViewer()
      fatal("Your session has expired (" + (e.reason || "unauthorized") + "). Reload the page to start a new one.")
    } else {
      fatal("The server refused the connection: " + (e.reason || "code " + e.code) + ".")
    }
  })

  let figures = null
  const show = (c) => {
    figures = c
    $("raised").textContent = money(c.raised)
    $("goal").textContent = money(c.goal)
    $("donors").textContent = count.format(c.donors)
    const pct = c.goal > 0 ? (c.raised / c.goal) * 100 : 0
    $("pct").textContent = pct === 0 ? "0%" : pct < 0.01 ? "<0.01%" : pct.toFixed(pct < 10 ? 2 : 1) + "%"
    const bar = $("progress")
    bar.max = c.goal > 0 ? c.goal : 1
    // At least a sliver once anything is raised, so a first donation shows.
    bar.value = c.raised > 0 ? Math.min(Math.max(c.raised, c.goal / 100), c.goal) : 0
  }

  // After a donation the exact figures (donors are distinct names) come
  // from the API; the raised total moves at once.
  let refetch = null
  const refreshSoon = () => {
    clearTimeout(refetch)
    refetch = setTimeout(async () => {
      try {
        const r = await fetch("/api/campaigns/" + encodeURIComponent(id))
        if (r.ok) show(await r.json())
      } catch {
        // The next campaign_data or campaign_refreshed will do.
      }
    }, 150)
  }

  channel.on("campaign_data", show)
  channel.on("campaign_refreshed", show)

  const feed = $("feed")
  const addFeed = (item) => {
    $("feed-empty").hidden = true
    feed.prepend(item)
    while (feed.children.length > 50) feed.lastChild.remove()
  }
  channel.on("donation_received", (d) => {
    const li = el("li", { class: "fresh" },
      el("span", { class: "who", text: d.donor }),
      el("span", { class: "note", text: "gave" }),
      el("span", { class: "amount", text: money(d.amount) }))
    if (d.source === "bank_transfer") li.append(el("span", { class: "badge", text: "bank transfer" }))
    li.append(el("time", { datetime: d.timestamp, text: time(d.timestamp) }))
    addFeed(li)
    if (figures) show({ ...figures, raised: figures.raised + d.amount })
    refreshSoon()
  })
  channel.on("campaign_updated", (u) => {
    const note = $("announcement")
    note.textContent = "The organizers announced " + money(Number(u.raised)) + " raised (" + time(u.timestamp) + ")."
    note.hidden = false
  })

  presence.onSync(() => {
    const people = presence.list((key, { metas }) => ({ key, since: Math.min(...metas.map((m) => Number(m.online_at) || 0)) }))
    people.sort((a, b) => (a.key === me ? -1 : b.key === me ? 1 : a.since - b.since || a.key.localeCompare(b.key)))
    const list = $("online")
    list.replaceChildren(...people.map(({ key }) => {
      const avatar = el("span", { class: "avatar", "aria-hidden": "true", text: (key.replace(/^guest-/, "")[0] || "?").toUpperCase() })
      avatar.style.background = avatarColor(key)
      const li = el("li", { class: key === me ? "me" : "" }, avatar, el("span", { class: "name", text: key }))
      if (key === me) li.append(el("span", { class: "you", text: "you" }))
      return li
    }))
    $("online-count").textContent = "(" + people.length + ")"
    $("watching").textContent = count.format(people.length)
  })

  channel.join()
    .receive("ok", () => conn.joined())
    .receive("error", (r) => fatal("Could not join the campaign: " + (r && r.reason ? r.reason : "error") + ". Retrying…"))
  socket.connect()

  // Donating.
  const form = $("donate")
  const donor = $("donor")
  const amount = $("amount")
  const give = $("give")
  const status = $("donate-status")
  donor.value = localStorage.getItem("plume-donor") || ""
  for (const b of form.querySelectorAll("[data-amount]")) {
    b.addEventListener("click", () => {
      amount.value = b.dataset.amount
      amount.focus()
    })
  }

  let pending = null // the donation waiting for its reply
  const settle = (kind, text) => {
    pending = null
    give.disabled = false
    setStatus(status, kind, text)
  }
  // A reply can no longer come once the channel is lost: say so now rather
  // than after the push's timeout.
  const lostWhilePending = () => {
    if (pending) settle("error", "The connection dropped before the server answered. Check the live feed to see whether your donation went through.")
  }
  channel.onError(lostWhilePending)
  socket.onClose(lostWhilePending)

  form.addEventListener("submit", (e) => {
    e.preventDefault()
    if (pending) return
    const name = donor.value.trim()
    const cents = toCents(amount.value)
    if (!socket.isConnected() || channel.state !== "joined") {
      setStatus(status, "error", "You are offline, so nothing was sent. The page reconnects by itself; try again when it shows Live.")
      return
    }
    localStorage.setItem("plume-donor", name)
    give.disabled = true
    setStatus(status, "pending", "Sending…")
    const push = channel.push("new_donation", { amount: cents, donor: name }, 10000)
    pending = push
    push
      .receive("ok", () => {
        if (pending !== push) return
        amount.value = ""
        settle("ok", "Thank you, " + name + "! Your " + money(cents) + " donation is in.")
      })
      .receive("error", (r) => {
        if (pending !== push) return
        const reason = r && r.reason
        settle("error", donateErrors[reason] || "The server refused the donation (" + (reason || "error") + ").")
      })
      .receive("timeout", () => {
        if (pending !== push) return
        settle("error", "No answer from the server within 10 seconds. Check the live feed before trying again.")
      })
  })
}

// ---------------------------------------------------------------------------
// Dashboard

async function dashboardPage() {
  const login = $("login")
  const board = $("board")
  const tokenInput = $("token")
  const loginError = $("login-error")
  let session = null
  const pill = $("conn")
  pill.hidden = true

  const signOut = (message) => {
    if (session) session.stop()
    session = null
    sessionStorage.removeItem("plume-admin-token")
    board.hidden = true
    login.hidden = false
    pill.hidden = true
    setStatus(loginError, message ? "error" : "", message || "")
    tokenInput.focus()
  }

  const open = async (token) => {
    const phx = await loadPhoenix()
    if (!phx) return
    if (session) session.stop()
    pill.hidden = false
    setStatus(loginError, "pending", "Checking…")
    session = dashboard(phx, token, {
      ok() {
        sessionStorage.setItem("plume-admin-token", token)
        login.hidden = true
        board.hidden = false
        setStatus(loginError, "", "")
      },
      refused(reason) {
        signOut(reason === "unauthorized" ? "That token is not right." : "The dashboard refused: " + reason)
      },
    })
  }

  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault()
    open(tokenInput.value)
  })
  $("sign-out").addEventListener("click", () => signOut(""))
  const saved = sessionStorage.getItem("plume-admin-token")
  if (saved) open(saved)
  else tokenInput.focus()
}

// dashboard joins dashboard:live with token and renders what it receives.
function dashboard({ Socket, Presence }, token, { ok, refused }) {
  const socket = new Socket("/socket")
  const channel = socket.channel("dashboard:live", { admin_token: token })
  const presence = new Presence(channel)
  const conn = connection(socket, channel)
  let state = { total: 0, campaigns: 0, recent: [] }

  const render = (fresh) => {
    $("total-raised").textContent = money(state.total)
    $("campaign-count").textContent = count.format(state.campaigns)
    const rows = state.recent.map((d, i) => {
      const link = el("a", { href: "/campaigns/" + encodeURIComponent(d.campaign), text: d.campaign })
      return el("tr", { class: fresh && i === 0 ? "fresh" : "" },
        el("td", {}, link),
        el("td", { text: d.donor }),
        el("td", { class: "num", text: money(d.amount) }),
        el("td", { class: "when", text: d.timestamp ? time(d.timestamp) : "earlier" }))
    })
    $("recent").replaceChildren(...rows)
    $("recent-empty").hidden = rows.length > 0
  }

  channel.on("dashboard_state", (s) => {
    state = { total: s.total_raised, campaigns: s.active_campaigns, recent: s.recent_donations }
    render(false)
  })
  channel.on("new_donation", (d) => {
    state.total += d.amount
    state.recent = [{ campaign: d.campaign_id, amount: d.amount, donor: d.donor, timestamp: d.timestamp }, ...state.recent].slice(0, 10)
    render(true)
  })

  presence.onSync(() => {
    const metas = presence.list((key, { metas }) => metas).flat()
    metas.sort((a, b) => String(a.joined_at).localeCompare(String(b.joined_at)))
    $("admin-count").textContent = count.format(metas.length)
    $("admins").replaceChildren(...metas.map((m, i) =>
      el("li", {}, el("span", { text: "Admin session " + (i + 1) }), el("span", { class: "since", text: "since " + time(m.joined_at) }))))
  })

  channel.join()
    .receive("ok", () => {
      conn.joined()
      ok()
    })
    .receive("error", (r) => {
      // A refused join would be retried forever: stop here.
      channel.leave()
      socket.disconnect()
      conn.stopped()
      refused(r && r.reason ? r.reason : "error")
    })
  socket.connect()

  const lookup = $("lookup")
  const result = $("lookup-result")
  const onLookup = (e) => {
    e.preventDefault()
    const id = $("lookup-id").value.trim()
    if (!id) {
      setStatus(result, "error", "Enter a campaign id.")
      return
    }
    setStatus(result, "pending", "Looking up…")
    channel.push("request_campaign_update", { campaign_id: id }, 10000)
      .receive("ok", (c) => setStatus(result, "ok",
        c.id + ": " + money(c.raised) + " raised of " + money(c.goal) + " from " + count.format(c.donors) + (c.donors === 1 ? " donor." : " donors.")))
      .receive("error", (r) => setStatus(result, "error", "The server refused: " + (r && r.reason ? r.reason : "error")))
      .receive("timeout", () => setStatus(result, "error", "No answer within 10 seconds."))
  }
  lookup.addEventListener("submit", onLookup)

  return {
    stop() {
      lookup.removeEventListener("submit", onLookup)
      channel.leave()
      socket.disconnect()
      conn.stopped()
    },
  }
}

if (page === "campaign") campaignPage()
else if (page === "dashboard") dashboardPage()
