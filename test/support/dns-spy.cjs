// Preloaded (NODE_OPTIONS=--require) into a command run by a test: every host name the process
// asks the resolver for is appended to the file DNS_SPY_FILE, so a test can see that no part of
// a password was ever sent to DNS.
const dns = require('node:dns')
const { appendFileSync } = require('node:fs')

const lookup = dns.lookup
dns.lookup = function (hostname, ...rest) {
  appendFileSync(process.env.DNS_SPY_FILE, `${hostname}\n`)
  return lookup.call(this, hostname, ...rest)
}
