#!/usr/bin/env node
// Starts a local Bluesky network (PLC + PDS + AppView + Ozone) from @atproto/dev-env on loopback and keeps it
// running until SIGTERM/SIGINT. Used instead of the package's bin.js, which does not run on Node 20.
//
// Environment (set by servers.sh):
//   DB_POSTGRES_URL   postgres URL (required), e.g. postgresql://postgres@127.0.0.1:55432/postgres
//   REDIS_HOST        host:port of redis (required), e.g. 127.0.0.1:56379
//   TMPDIR            where the PDS keeps its SQLite actor stores and blobs (servers.sh points it at the state dir)
//   BSKY_PLC_PORT, BSKY_PDS_PORT, BSKY_APPVIEW_PORT, BSKY_OZONE_PORT   fixed ports (defaults 2582..2587)
//   BSKY_RATE_LIMITS  "1" (default) turns on the PDS's own rate limiter, so responses carry RateLimit-* headers
//   BSKY_READY_FILE   written (JSON with the URLs and DIDs) once the network is up
'use strict'

const dns = require('node:dns')
const net = require('node:net')
const fs = require('node:fs')

// Loopback only: every server dev-env starts calls listen(port) without a host, which would bind all interfaces.
// Pin those to 127.0.0.1, and make "localhost" (used in dev-env's service URLs) resolve to IPv4 first.
dns.setDefaultResultOrder('ipv4first')
const origListen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1')
  } else if (args[0] && typeof args[0] === 'object' && !args[0].path && args[0].port !== undefined && !args[0].host) {
    args[0] = { ...args[0], host: '127.0.0.1' }
  } else if (args.length === 0 || typeof args[0] === 'function') {
    args.unshift(0, '127.0.0.1')
  }
  return origListen.apply(this, args)
}

const { TestNetwork, mockMailer } = require('@atproto/dev-env')

const int = (v, d) => (v ? parseInt(v, 10) : d)
const ports = {
  plc: int(process.env.BSKY_PLC_PORT, 2582),
  pds: int(process.env.BSKY_PDS_PORT, 2583),
  appview: int(process.env.BSKY_APPVIEW_PORT, 2584),
  ozone: int(process.env.BSKY_OZONE_PORT, 2587),
}

async function main() {
  const t0 = Date.now()
  const rateLimits = (process.env.BSKY_RATE_LIMITS ?? '1') === '1'
  const network = await TestNetwork.create({
    dbPostgresSchema: 'tonedesk',
    pds: {
      port: ports.pds,
      hostname: 'localhost',
      enableDidDocWithSession: true,
      rateLimitsEnabled: rateLimits,
    },
    bsky: {
      dbPostgresSchema: 'bsky',
      port: ports.appview,
      publicUrl: `http://localhost:${ports.appview}`,
    },
    plc: { port: ports.plc },
    ozone: {
      port: ports.ozone,
      chatUrl: 'http://localhost:2590', // no chat service runs; ozone only needs a value
      chatDid: 'did:example:chat',
      dbMaterializedViewRefreshIntervalMs: 30000,
    },
  })
  // dev-env's mailer only logs (no SMTP); the same call bin.js makes.
  mockMailer(network.pds)

  const info = {
    plcUrl: `http://127.0.0.1:${ports.plc}`,
    pdsUrl: `http://127.0.0.1:${ports.pds}`,
    appviewUrl: `http://127.0.0.1:${ports.appview}`,
    appviewDid: network.bsky.serverDid,
    ozoneUrl: `http://127.0.0.1:${ports.ozone}`,
    ozoneDid: network.ozone.ctx.cfg.service.did,
    pdsDid: network.pds.ctx.cfg.service.did,
    rateLimits,
    startedInMs: Date.now() - t0,
  }
  if (process.env.BSKY_READY_FILE) {
    const tmp = process.env.BSKY_READY_FILE + '.tmp'
    fs.writeFileSync(tmp, JSON.stringify(info, null, 2))
    fs.renameSync(tmp, process.env.BSKY_READY_FILE)
  }
  console.log(`bsky-network ready in ${info.startedInMs} ms: ${JSON.stringify(info)}`)

  let closing = false
  const shutdown = async (sig) => {
    if (closing) return
    closing = true
    console.log(`bsky-network: ${sig}, closing`)
    const hard = setTimeout(() => process.exit(0), 10000)
    hard.unref()
    try {
      await network.close()
    } catch (err) {
      console.error('bsky-network: close failed', err)
    }
    process.exit(0)
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}

main().catch((err) => {
  console.error('bsky-network: failed to start:', err)
  process.exit(1)
})
