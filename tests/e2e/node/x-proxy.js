#!/usr/bin/env node
// A small X API v2 stand-in for tonedesk's end-to-end tests, in front of Prism.
//
// Every request is first forwarded to Prism (`prism mock --errors` on the official spec), which validates it.
//  - Prism says no (4xx/5xx, usually 422 with an `sl-violations` header): that answer goes back unchanged.
//  - Prism says yes: for the few endpoints tonedesk uses, the proxy answers from its own small state
//    (posts, mentions, likes, mutes, hidden replies, DMs), so a test can post a mention as the customer,
//    see it in the brand's mentions timeline and check the brand's reply. Any other endpoint gets Prism's
//    (random, schema-valid) answer.
// Every answer carries x-rate-limit-limit/-remaining/-reset (a per-token, per-endpoint window), and a
// control plane under /_e2e/ injects faults (e.g. a 429) and shows what was requested.
//
// Environment: XPROXY_PORT (8404), PRISM_URL (http://127.0.0.1:8403), XPROXY_USERS (JSON list of
// {token,id,username,name}), XPROXY_RATE_LIMIT (900), XPROXY_RATE_WINDOW (900 s), XPROXY_NAMING (post|tweet),
// XPROXY_LOG (JSONL file of requests, optional).
'use strict'

const http = require('node:http')
const fs = require('node:fs')

const PORT = parseInt(process.env.XPROXY_PORT || '8404', 10)
const PRISM = new URL(process.env.PRISM_URL || 'http://127.0.0.1:8403')
const LIMIT = parseInt(process.env.XPROXY_RATE_LIMIT || '900', 10)
const WINDOW = parseInt(process.env.XPROXY_RATE_WINDOW || '900', 10)
const LOG = process.env.XPROXY_LOG || ''
let naming = process.env.XPROXY_NAMING === 'tweet' ? 'tweet' : 'post'

const users = JSON.parse(
  process.env.XPROXY_USERS ||
    JSON.stringify([
      { token: 'x-brand-token', id: '1500000000000000001', username: 'acmecare', name: 'Acme Care' },
      { token: 'x-customer-token', id: '1500000000000000002', username: 'casey_customer', name: 'Casey Customer' },
    ]),
)
const byToken = new Map(users.map((u) => [u.token, u]))
const byId = new Map(users.map((u) => [u.id, u]))

// ------------------------------------------------------------------ state
let seq = 0n
const BASE_ID = 1800000000000000000n
const nextId = () => String(BASE_ID + ++seq)
const posts = new Map() // id -> post (internal shape)
const actions = [] // likes, mutes, hides, DMs, in order
const requests = [] // request log
let faults = [] // {id, method, path (regex), status, headers, body, count}
let faultSeq = 0
const buckets = new Map() // token|method|route -> {start, count}

function routeKey(method, path) {
  return method + ' ' + path.replace(/\/[0-9]{1,19}(?=\/|$)/g, '/:id')
}

function rateHeaders(token, method, path) {
  const key = (token || 'anon') + '|' + routeKey(method, path)
  const now = Math.floor(Date.now() / 1000)
  let b = buckets.get(key)
  if (!b || now - b.start >= WINDOW) b = { start: now, count: 0 }
  b.count++
  buckets.set(key, b)
  return {
    over: b.count > LIMIT,
    headers: {
      'x-rate-limit-limit': String(LIMIT),
      'x-rate-limit-remaining': String(Math.max(0, LIMIT - b.count)),
      'x-rate-limit-reset': String(b.start + WINDOW),
    },
  }
}

function view(p) {
  const out = {
    id: p.id,
    text: p.text,
    author_id: p.author_id,
    created_at: p.created_at,
    conversation_id: p.conversation_id,
    lang: 'en',
  }
  out[naming === 'tweet' ? 'edit_history_tweet_ids' : 'edit_history_post_ids'] = [p.id]
  if (p.in_reply_to_user_id) out.in_reply_to_user_id = p.in_reply_to_user_id
  if (p.replied_to) out[naming === 'tweet' ? 'referenced_tweets' : 'referenced_posts'] = [{ type: 'replied_to', id: p.replied_to }]
  const mentions = [...p.text.matchAll(/@([A-Za-z0-9_]{1,15})/g)].map((m) => ({
    start: m.index,
    end: m.index + m[0].length,
    username: m[1],
    ...(users.find((u) => u.username.toLowerCase() === m[1].toLowerCase())
      ? { id: users.find((u) => u.username.toLowerCase() === m[1].toLowerCase()).id }
      : {}),
  }))
  if (mentions.length) out.entities = { mentions }
  return out
}

const userView = (u) => ({ id: u.id, username: u.username, name: u.name })

function listResponse(list, q) {
  const max = Math.min(parseInt(q.get('max_results') || '10', 10) || 10, 100)
  let items = list
  const since = q.get('since_id')
  const until = q.get('until_id')
  if (since) items = items.filter((p) => BigInt(p.id) > BigInt(since))
  if (until) items = items.filter((p) => BigInt(p.id) < BigInt(until))
  items = items.sort((a, b) => (BigInt(b.id) > BigInt(a.id) ? 1 : -1))
  const tokenIn = q.get('pagination_token')
  if (tokenIn) items = items.filter((p) => BigInt(p.id) < BigInt(tokenIn))
  const page = items.slice(0, max)
  const meta = { result_count: page.length }
  if (page.length) {
    meta.newest_id = page[0].id
    meta.oldest_id = page[page.length - 1].id
  }
  if (items.length > page.length) meta.next_token = page[page.length - 1].id
  const body = { meta }
  if (page.length) body.data = page.map(view)
  const exp = (q.get('expansions') || '').split(',')
  if (page.length && exp.includes('author_id')) {
    const ids = [...new Set(page.map((p) => p.author_id))]
    body.includes = { users: ids.map((id) => byId.get(id)).filter(Boolean).map(userView) }
  }
  return body
}

function mentionsOf(user) {
  const re = new RegExp('(^|[^A-Za-z0-9_])@' + user.username + '(?![A-Za-z0-9_])', 'i')
  return [...posts.values()].filter((p) => p.author_id !== user.id && re.test(p.text))
}

// Answers from the state for the endpoints tonedesk uses; null = use Prism's answer.
function emulate(method, path, q, body, me) {
  let m
  if (method === 'POST' && path === '/2/tweets') {
    if (!me) return null
    const id = nextId()
    const parentId = body?.reply?.in_reply_to_tweet_id || body?.reply?.in_reply_to_post_id
    const parent = parentId ? posts.get(parentId) : null
    const p = {
      id,
      text: String(body?.text ?? ''),
      author_id: me.id,
      created_at: new Date().toISOString().replace(/\.\d{3}Z$/, '.000Z'),
      conversation_id: parent ? parent.conversation_id : id,
      replied_to: parentId || null,
      in_reply_to_user_id: parent ? parent.author_id : null,
    }
    posts.set(id, p)
    const data = { id, text: p.text }
    data[naming === 'tweet' ? 'edit_history_tweet_ids' : 'edit_history_post_ids'] = [id]
    return [201, { data }]
  }
  if (method === 'GET' && (m = path.match(/^\/2\/users\/([0-9]+)\/mentions$/))) {
    const u = byId.get(m[1])
    if (!u) return [200, { meta: { result_count: 0 } }]
    return [200, listResponse(mentionsOf(u), q)]
  }
  if (method === 'GET' && path === '/2/tweets/search/recent') {
    const terms = (q.get('query') || '')
      .split(/\s+/)
      .filter((t) => t && !t.startsWith('-') && !t.includes(':') && !/^(OR|AND)$/.test(t))
      .map((t) => t.replace(/^["(]+|[")]+$/g, '').toLowerCase())
    const hits = [...posts.values()].filter((p) => terms.some((t) => p.text.toLowerCase().includes(t)))
    return [200, listResponse(hits, q)]
  }
  if (method === 'GET' && (m = path.match(/^\/2\/tweets\/([0-9]+)$/))) {
    const p = posts.get(m[1])
    if (!p) return [200, { errors: [{ title: 'Not Found Error', detail: `Could not find post with id: [${m[1]}].`, type: 'https://api.x.com/2/problems/resource-not-found', resource_type: 'post', resource_id: m[1], parameter: 'id', value: m[1] }] }]
    const out = { data: view(p) }
    if ((q.get('expansions') || '').split(',').includes('author_id') && byId.get(p.author_id)) out.includes = { users: [userView(byId.get(p.author_id))] }
    return [200, out]
  }
  if (method === 'GET' && path === '/2/users/me') {
    return me ? [200, { data: userView(me) }] : null
  }
  if (method === 'GET' && (m = path.match(/^\/2\/users\/by\/username\/([A-Za-z0-9_]+)$/))) {
    const u = users.find((x) => x.username.toLowerCase() === m[1].toLowerCase())
    return u ? [200, { data: userView(u) }] : null
  }
  if (method === 'POST' && (m = path.match(/^\/2\/users\/([0-9]+)\/likes$/))) {
    actions.push({ action: 'like', user_id: m[1], post_id: body?.tweet_id ?? body?.post_id, at: new Date().toISOString() })
    return [200, { data: { liked: true } }]
  }
  if (method === 'POST' && (m = path.match(/^\/2\/users\/([0-9]+)\/muting$/))) {
    actions.push({ action: 'mute', user_id: m[1], target_user_id: body?.target_user_id, at: new Date().toISOString() })
    return [200, { data: { muting: true } }]
  }
  if (method === 'PUT' && (m = path.match(/^\/2\/tweets\/([0-9]+)\/hidden$/))) {
    actions.push({ action: body?.hidden ? 'hide' : 'unhide', post_id: m[1], at: new Date().toISOString() })
    return [200, { data: { hidden: !!body?.hidden } }]
  }
  if (method === 'POST' && (m = path.match(/^\/2\/dm_conversations\/with\/([0-9]+)\/messages$/))) {
    const ev = nextId()
    actions.push({ action: 'dm', from_user_id: me?.id ?? null, participant_id: m[1], text: body?.text, dm_event_id: ev, at: new Date().toISOString() })
    return [201, { data: { dm_conversation_id: `${me?.id ?? '0'}-${m[1]}`, dm_event_id: ev } }]
  }
  return null
}

// ------------------------------------------------------------------ http
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

function send(res, status, body, headers = {}) {
  const buf = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': buf.length, ...headers })
  res.end(buf)
}

function forward(req, raw) {
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, host: PRISM.host }
    delete headers['content-length']
    if (raw.length) headers['content-length'] = raw.length
    const up = http.request(
      { host: PRISM.hostname, port: PRISM.port, method: req.method, path: req.url, headers },
      (r) => {
        const chunks = []
        r.on('data', (c) => chunks.push(c))
        r.on('end', () => resolve({ status: r.statusCode, headers: r.headers, body: Buffer.concat(chunks) }))
      },
    )
    up.on('error', reject)
    up.end(raw)
  })
}

function control(req, res, url, raw) {
  const p = url.pathname
  let body = null
  try {
    body = raw.length ? JSON.parse(raw.toString()) : null
  } catch {
    return send(res, 400, { error: 'body must be JSON' })
  }
  if (p === '/_e2e/health') return send(res, 200, { ok: true, prism: PRISM.href, naming })
  if (p === '/_e2e/requests' && req.method === 'GET') return send(res, 200, requests)
  if (p === '/_e2e/requests' && req.method === 'DELETE') {
    requests.length = 0
    return send(res, 200, { ok: true })
  }
  if (p === '/_e2e/posts' && req.method === 'GET') return send(res, 200, [...posts.values()].map(view))
  if (p === '/_e2e/actions' && req.method === 'GET') return send(res, 200, actions)
  if (p === '/_e2e/users' && req.method === 'GET') return send(res, 200, users)
  if (p === '/_e2e/naming' && req.method === 'POST') {
    naming = body?.naming === 'tweet' ? 'tweet' : 'post'
    return send(res, 200, { naming })
  }
  if (p === '/_e2e/faults' && req.method === 'GET') return send(res, 200, faults)
  if (p === '/_e2e/faults' && req.method === 'DELETE') {
    faults = []
    return send(res, 200, { ok: true })
  }
  if (p === '/_e2e/faults' && req.method === 'POST') {
    // {"method":"GET","path":"^/2/users/[0-9]+/mentions$","status":429,"reset_in":2,"count":1,"headers":{},"body":{}}
    const status = body?.status ?? 429
    const f = {
      id: 'f' + ++faultSeq,
      method: body?.method ? String(body.method).toUpperCase() : null,
      path: body?.path ?? null,
      status,
      reset_in: body?.reset_in ?? 2,
      headers: body?.headers ?? {},
      body: body?.body ?? null,
      count: body?.count ?? 1,
    }
    try {
      if (f.path) new RegExp(f.path)
    } catch {
      return send(res, 422, { error: 'path must be a regular expression' })
    }
    faults.push(f)
    return send(res, 200, f)
  }
  if (p === '/_e2e/reset' && req.method === 'POST') {
    posts.clear()
    actions.length = 0
    requests.length = 0
    faults = []
    buckets.clear()
    return send(res, 200, { ok: true })
  }
  return send(res, 404, { error: 'unknown control path' })
}

function takeFault(method, path) {
  const i = faults.findIndex((f) => (!f.method || f.method === method) && (!f.path || new RegExp(f.path).test(path)))
  if (i < 0) return null
  const f = faults[i]
  if (f.count !== null && --f.count <= 0) faults.splice(i, 1)
  return f
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x')
  let raw
  try {
    raw = await readBody(req)
  } catch {
    return
  }
  if (url.pathname.startsWith('/_e2e/')) return control(req, res, url, raw)

  const auth = req.headers.authorization || ''
  const token = auth.startsWith('Bearer ') ? auth.slice(7) : null
  const me = token ? byToken.get(token) : null
  const entry = {
    seq: requests.length + 1,
    at: new Date().toISOString(),
    method: req.method,
    path: url.pathname,
    query: url.search ? url.search.slice(1) : '',
    user: me ? me.username : token ? 'unknown-token' : null,
    body: null,
    prism_status: null,
    violations: null,
    status: null,
    source: null,
  }
  if (raw.length) {
    try {
      entry.body = JSON.parse(raw.toString())
    } catch {
      entry.body = raw.toString()
    }
  }
  requests.push(entry)
  const done = (status, body, headers, source) => {
    entry.status = status
    entry.source = source
    if (LOG) fs.appendFile(LOG, JSON.stringify(entry) + '\n', () => {})
    send(res, status, body, headers)
  }

  const rl = rateHeaders(token, req.method, url.pathname)
  const fault = takeFault(req.method, url.pathname)
  if (fault) {
    const now = Math.floor(Date.now() / 1000)
    const h = { ...rl.headers }
    if (fault.status === 429) {
      h['x-rate-limit-remaining'] = '0'
      h['x-rate-limit-reset'] = String(now + fault.reset_in)
    }
    Object.assign(h, fault.headers)
    const b = fault.body ?? { title: fault.status === 429 ? 'Too Many Requests' : 'Injected fault', detail: fault.status === 429 ? 'Too Many Requests' : `Injected status ${fault.status}`, type: 'about:blank', status: fault.status }
    return done(fault.status, b, h, 'fault')
  }
  if (rl.over) return done(429, { title: 'Too Many Requests', detail: 'Too Many Requests', type: 'about:blank', status: 429 }, rl.headers, 'ratelimit')

  let up
  try {
    up = await forward(req, raw)
  } catch (err) {
    return done(502, { title: 'Bad Gateway', detail: `Prism unreachable: ${err.message}`, type: 'about:blank', status: 502 }, {}, 'proxy')
  }
  entry.prism_status = up.status
  if (up.headers['sl-violations']) {
    try {
      entry.violations = JSON.parse(up.headers['sl-violations'])
    } catch {
      entry.violations = up.headers['sl-violations']
    }
  }
  if (up.status >= 200 && up.status < 300) {
    // Prism accepts any bearer string; the real API does not. An unknown token is a test misconfiguration.
    if (!me) return done(401, { title: 'Unauthorized', type: 'about:blank', status: 401, detail: 'Unauthorized (x-proxy knows no such token; see /_e2e/users)' }, rl.headers, 'proxy')
    let emulated = null
    try {
      emulated = emulate(req.method, url.pathname, url.searchParams, entry.body, me)
    } catch (err) {
      return done(500, { title: 'Emulation error', detail: err.message, type: 'about:blank', status: 500 }, rl.headers, 'proxy')
    }
    if (emulated) return done(emulated[0], emulated[1], rl.headers, 'state')
  }
  const h = { ...rl.headers }
  if (up.headers['sl-violations']) h['sl-violations'] = up.headers['sl-violations']
  return done(up.status, up.body.toString(), h, 'prism')
})

server.listen(PORT, '127.0.0.1', () => console.log(`x-proxy listening on http://127.0.0.1:${PORT} -> Prism ${PRISM.href}`))
const stop = () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 2000).unref()
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
