// Test fixtures: the stated binary built from this repository, run as real
// processes on 127.0.0.1, and a TCP proxy that cuts connections.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

let built = '';

/**
 * Returns the path of a stated binary: $STATED_BIN if set, else one built from
 * this repository into a temporary directory (once per test process).
 */
export function statedBinary() {
  if (process.env.STATED_BIN) return process.env.STATED_BIN;
  if (built) return built;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stated-js-bin-'));
  const bin = path.join(dir, 'stated');
  execFileSync('go', ['build', '-o', bin, './cmd/stated'], { cwd: repoRoot, stdio: 'inherit' });
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  built = bin;
  return bin;
}

// The servers a test process started die with it, however it ends.
const running = new Set();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => process.exit(1));
}

// startProcess runs the binary with args and resolves with the address its log
// line matching pattern names.
function startProcess(args, pattern, env = {}) {
  const proc = spawn(statedBinary(), args, {
    env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(proc);
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`no listening line within 60 s; log:\n${log}`));
    }, 60000);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = log.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve({
          addr: m[1],
          proc,
          log: () => log,
          async stop() {
            if (proc.exitCode !== null) return;
            const exited = new Promise((r) => proc.once('exit', r));
            proc.kill('SIGTERM');
            await exited;
            running.delete(proc);
          },
        });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      running.delete(proc);
      reject(new Error(`stated exited with ${code}; log:\n${log}`));
    });
  });
}

/**
 * Starts `stated serve` on 127.0.0.1:0 with a fresh data directory. Extra args and
 * environment variables are passed on. Resolves with {addr, url, stop, dataDir}.
 */
export async function startServer({ args = [], env = {} } = {}) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'stated-js-data-'));
  const srv = await startProcess(
    ['serve', '--addr', '127.0.0.1:0', '--data', dataDir, ...args],
    /msg="stated listening" addr=(\S+)/, env,
  );
  const stop = srv.stop;
  return {
    ...srv,
    dataDir,
    url: `ws://${srv.addr}/v1/ws`,
    async stop() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a server whose built-in simulator answers at tokensPerSecond, so that
 * answers take long enough to be interrupted.
 */
export function startSlowServer({ tokensPerSecond = 25, args = [] } = {}) {
  return startServer({ args: ['--sim-latency-first-token', '100ms',
    '--sim-latency-tokens-per-second', String(tokensPerSecond), ...args] });
}

/**
 * Starts a TCP proxy on 127.0.0.1:0 in front of target (host:port). The returned
 * proxy can cut every connection, drop what either side sends, and tells whether
 * a given text passed from the target.
 */
export function startProxy(target) {
  const [host, port] = splitHostPort(target);
  const pairs = new Set();
  const state = { holdUp: false, dropDown: false, seen: '', connections: 0, dropped: 0 };
  const server = net.createServer((client) => {
    state.connections++;
    const upstream = net.connect(port, host);
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (b) => {
      if (state.holdUp) state.dropped += b.length;
      else upstream.write(b);
    });
    upstream.on('data', (b) => {
      state.seen = (state.seen + b.toString('latin1')).slice(-1 << 20);
      if (!state.dropDown) client.write(b);
    });
    for (const sock of [client, upstream]) {
      sock.on('error', end);
      sock.on('close', end);
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        addr: `127.0.0.1:${server.address().port}`,
        state,
        /** Cuts every open connection, dropping what is in flight. */
        cutAll() {
          for (const p of pairs) {
            p.client.destroy();
            p.upstream.destroy();
          }
          pairs.clear();
        },
        /** While on, bytes from clients are dropped instead of passed on. */
        holdUpstream(on) { state.holdUp = on; },
        /** While on, bytes from the target are dropped instead of passed on. */
        dropDownstream(on) { state.dropDown = on; },
        /** Whether text has passed from the target since start. */
        saw(text) { return state.seen.includes(text); },
        close() {
          this.cutAll();
          return new Promise((r) => server.close(r));
        },
      });
    });
  });
}

function splitHostPort(addr) {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}

/** An admin key for servers started with authentication on. */
export const ADMIN_KEY = 'admin-key-for-tests-0123456789';

/** Starts a server that requires API keys, and returns it with a tenant's key. */
export async function startAuthServer() {
  const srv = await startServer({ args: ['--auth', 'on'], env: { STATED_ADMIN_KEY: ADMIN_KEY } });
  const admin = { Authorization: `Bearer ${ADMIN_KEY}`, 'Content-Type': 'application/json' };
  const post = async (p, body) => {
    const res = await fetch(`http://${srv.addr}${p}`, { method: 'POST', headers: admin,
      body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`POST ${p}: HTTP ${res.status}`);
    return res.json();
  };
  await post('/v1/tenants', { name: 'acme' });
  const { key } = await post('/v1/tenants/acme/keys', { name: 'tests' });
  return { ...srv, key };
}

/** Polls cond every 10 ms until it is true, failing after ms. */
export async function waitFor(cond, what, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whether the chromium the browser test drives is installed. */
export const haveChromium = existsSync('/usr/bin/chromium');
